"""The keyboard-wedge scanner: key events in, the code the shopper scanned out."""

from __future__ import annotations

import asyncio
import sys

import pytest

from edged.runtime.backoff import Backoff
from hal.config import EvdevScanner
from hal.device import DeviceError
from hal.scanner.evdev_hid import EvdevScannerDriver, Selector
from hal.scanner.keymap import KeyMap
from hal.scanner.protocol import Scan
from tests.hal.fake_evdev import FakeEvdev
from tests.hal.helpers import until

EV_SYN, EV_KEY, SYN_REPORT, SYN_DROPPED = 0, 1, 0, 3
SHIFT, RSHIFT, ENTER, KPENTER, ALTGR, CAPS = 42, 54, 28, 96, 100, 58
# Key positions written out by hand (linux/input-event-codes.h), independent of the key map.
POS = {c: 2 + i for i, c in enumerate("1234567890")}
POS |= {c: 16 + i for i, c in enumerate("qwertyuiop")}
POS |= {c: 30 + i for i, c in enumerate("asdfghjkl")}
POS |= {c: 44 + i for i, c in enumerate("zxcvbnm")}
POS |= {"-": 12, ".": 52, "/": 53}


def press(code: int) -> list[tuple[int, int, int]]:
    return [(EV_KEY, code, 1), (EV_SYN, SYN_REPORT, 0), (EV_KEY, code, 0), (EV_SYN, SYN_REPORT, 0)]


def typed_us(text: str, end: int = ENTER) -> list[tuple[int, int, int]]:
    events: list[tuple[int, int, int]] = []
    for ch in text:
        if ch.isupper():
            events += [(EV_KEY, SHIFT, 1), *press(POS[ch.lower()]), (EV_KEY, SHIFT, 0)]
        else:
            events += press(POS[ch])
    return events + press(end)


def feed(keymap: KeyMap, events: list[tuple[int, int, int]]) -> str:
    return "".join(ch for t, c, v in events if (t == EV_KEY and (ch := keymap.key(c, v))) or "")


# -- key map ---------------------------------------------------------------------------------


def test_us_layout_with_shift_gives_mixed_case_and_enter() -> None:
    assert feed(KeyMap("us"), typed_us("Ab1Z9")) == "Ab1Z9\n"


def test_shifted_symbols_and_right_shift() -> None:
    km = KeyMap("us")
    events = [(EV_KEY, RSHIFT, 1), *press(POS["1"]), *press(POS["/"]), (EV_KEY, RSHIFT, 0)]
    assert feed(km, events + press(POS["/"])) == "!?/"


def test_keypad_digits_and_keypad_enter() -> None:
    kp = {"7": 71, "8": 72, "9": 73, "4": 75, "5": 76, "6": 77, "1": 79, "2": 80, "3": 81, "0": 82}
    events = [e for d in "6901234578" for e in press(kp[d])] + press(KPENTER)
    assert feed(KeyMap("us"), events) == "6901234578\n"


def test_german_layout_swaps_y_and_z_and_shifted_digits() -> None:
    # A German-configured scanner typing "Zy-2": it presses the keys where those are on QWERTZ.
    events = [(EV_KEY, SHIFT, 1), *press(POS["y"]), (EV_KEY, SHIFT, 0), *press(POS["z"])]
    events += press(POS["/"]) + press(POS["2"])
    assert feed(KeyMap("de"), events) == "Zy-2"
    assert feed(KeyMap("de"), [(EV_KEY, ALTGR, 1), *press(POS["q"]), (EV_KEY, ALTGR, 0)]) == "@"


def test_french_layout_digits_need_shift() -> None:
    digits = [(EV_KEY, SHIFT, 1), *press(POS["1"]), *press(POS["0"]), (EV_KEY, SHIFT, 0)]
    assert feed(KeyMap("fr"), digits + press(POS["1"]) + press(POS["q"])) == "10&a"


def test_caps_lock_inverts_letters_only() -> None:
    assert feed(KeyMap("us"), press(CAPS) + press(POS["a"]) + press(POS["1"])) == "A1"


def test_autorepeat_and_unknown_keys_type_nothing() -> None:
    assert feed(KeyMap("us"), [(EV_KEY, POS["a"], 2), (EV_KEY, 59, 1), (EV_KEY, 59, 0)]) == ""


def test_unknown_layout_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown keyboard layout 'xx'"):
        KeyMap("xx")


def test_selector_parses_path_vid_pid_and_name() -> None:
    assert Selector.parse("/dev/input/by-id/usb-scan-event-kbd").path is not None
    sel = Selector.parse("05e0:1200")
    assert (sel.vendor, sel.product) == (0x05E0, 0x1200)
    assert Selector.parse("Honeywell Scanner").name == "Honeywell Scanner"
    with pytest.raises(ValueError):
        Selector.parse("  ")


# -- driver ------------------------------------------------------------------------------------


class Harness:
    def __init__(self, lib: FakeEvdev, driver: EvdevScannerDriver) -> None:
        self.lib, self.driver = lib, driver
        self.scans: asyncio.Queue[Scan] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Harness:
        async def emit(scan: Scan) -> None:
            self.scans.put_nowait(scan)

        self.task = asyncio.create_task(self.driver.run(emit))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def next(self) -> str:
        return (await asyncio.wait_for(self.scans.get(), 2)).text


def make(lib: FakeEvdev, device: str, **kw: object) -> EvdevScannerDriver:
    config = EvdevScanner(driver="evdev", device=device, **kw)  # type: ignore[arg-type]
    return EvdevScannerDriver(config, backend=lib, backoff=Backoff(0.01, 0.05, jitter=False))


async def test_scanner_found_by_vendor_product_grabbed_and_scans_reach_checkout() -> None:
    lib = FakeEvdev()
    lib.plug("/dev/input/event3", name="Consumer Control", keys=[113, 114])  # same vid:pid
    lib.plug("/dev/input/event4", name="Scanner Keyboard")
    driver = make(lib, "05e0:1200")
    async with Harness(lib, driver) as h:
        await until(lambda: driver.status().present)
        assert driver.status().detail.startswith("Scanner Keyboard at /dev/input/event4")
        assert lib.nodes["/dev/input/event4"].grabbed_by is not None
        lib.send("/dev/input/event4", *typed_us("6901234567892"))
        assert await h.next() == "6901234567892"


async def test_prefix_and_suffix_are_stripped_and_suffix_ends_a_scan() -> None:
    lib = FakeEvdev()
    lib.plug("/dev/input/event4", name="Scanner Keyboard")
    driver = make(lib, "Scanner Keyboard", prefix="]Q", suffix="..")
    async with Harness(lib, driver) as h:
        await until(lambda: driver.status().present)
        events = press(27)  # "]"
        events += [(EV_KEY, SHIFT, 1), *press(POS["q"]), (EV_KEY, SHIFT, 0)]
        events += typed_us("abc1..")[:-4]  # no Enter: the suffix ends the scan
        lib.send("/dev/input/event4", *events)
        assert await h.next() == "abc1"


async def test_syn_dropped_discards_the_damaged_scan_and_keeps_the_next() -> None:
    lib = FakeEvdev()
    node = lib.plug("/dev/input/event4")
    driver = make(lib, "/dev/input/event4")
    async with Harness(lib, driver) as h:
        await until(lambda: driver.status().present)
        # Shift went down, then the kernel buffer overflowed: the up event was lost.
        events = [(EV_KEY, SHIFT, 1), *press(POS["1"]), (EV_SYN, SYN_DROPPED, 0)]
        events += [(EV_KEY, POS["2"], 1), (EV_KEY, SHIFT, 0)]  # dropped until SYN_REPORT
        events += [(EV_SYN, SYN_REPORT, 0), *press(POS["3"]), *press(ENTER)]
        node.held = set()  # the device's real state after the drop: no key held
        lib.send("/dev/input/event4", *events, *typed_us("4006381333931"))
        assert await h.next() == "4006381333931"  # the damaged "!...3" never arrives
        assert "1 scan(s) discarded" in driver.status().detail
        assert h.scans.empty()


async def test_unplug_releases_device_and_replug_is_picked_up_without_spinning() -> None:
    lib = FakeEvdev()
    lib.plug("/dev/input/event4")
    driver = make(lib, "/dev/input/event4")
    driver._backoff = Backoff(0.05, 0.05, jitter=False)
    async with Harness(lib, driver) as h:
        await until(lambda: driver.status().present)
        first = lib.opened[-1]
        lib.unplug("/dev/input/event4")
        await until(lambda: not driver.status().present)
        assert first.closed and "unplugged" in driver.status().detail
        looked = lib.scans_while_absent
        await until(lambda: lib.scans_while_absent >= looked + 3, what="three rescans")
        assert driver.opened == 1 and len(lib.opened) == 1  # rescans sleep, nothing opened
        lib.plug("/dev/input/event4")
        await until(lambda: driver.status().present)
        lib.send("/dev/input/event4", *typed_us("123"))
        assert await h.next() == "123"
        assert driver.opened == 2


async def test_scanner_grabbed_by_another_process_is_a_clear_error() -> None:
    lib = FakeEvdev()
    node = lib.plug("/dev/input/event4")
    node.grabbed_by = object()
    driver = make(lib, "/dev/input/event4")
    with pytest.raises(DeviceError, match="grabbed by another process"):
        await driver.run(lambda scan: asyncio.sleep(0))


async def test_missing_evdev_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "evdev", None)  # as on a machine without the hid extra
    driver = EvdevScannerDriver(
        EvdevScanner(driver="evdev", device="/dev/input/event9"), backoff=Backoff(0.5, 5.0)
    )
    driver._backend = None
    with pytest.raises(DeviceError, match=r"pip install 'edged\[hid\]'"):
        await driver.run(lambda scan: asyncio.sleep(0))
