"""USB HID keyboard-wedge scanner read through evdev.

The scanner is grabbed exclusively so the codes it types never reach a console or a browser
kiosk window, and keys are translated with our own key map (evdev reports positions, not
characters). Unplugging is normal in a shop: the driver releases the node, reports itself
absent, and rescans with backoff until the scanner returns, sleeping in between.

`evdev` is an optional extra; the module is imported when the driver starts, and tests pass
a stand-in that implements the same documented API (InputDevice, list_devices, ecodes).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from hal.config import EvdevScanner
from hal.device import DeviceError, DeviceKind, DeviceStatus
from hal.retry import RetryDelays
from hal.scanner.keymap import KeyMap
from hal.scanner.protocol import Scan, ScanSink

log = logging.getLogger(__name__)

EV_SYN = 0
EV_KEY = 1
SYN_REPORT = 0
SYN_DROPPED = 3
KEY_A = 30
KEY_ENTER = 28
MAX_SCAN_CHARS = 4096
"""A scan longer than this is garbage (a stuck key, a wrong device), not a barcode."""

_VID_PID = re.compile(r"^([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$")


class InputEventLike(Protocol):
    type: int
    code: int
    value: int


class InputDeviceLike(Protocol):
    path: str
    name: str

    def grab(self) -> None: ...
    def ungrab(self) -> None: ...
    def close(self) -> None: ...
    def active_keys(self) -> list[int]: ...
    def async_read_loop(self) -> AsyncIterator[InputEventLike]: ...


@dataclass(frozen=True)
class Selector:
    """How the config names the scanner: a path, vendor:product, or a device name."""

    path: str | None = None
    vendor: int | None = None
    product: int | None = None
    name: str | None = None

    @classmethod
    def parse(cls, text: str) -> Selector:
        text = text.strip()
        if not text:
            raise ValueError("scanner device selector is empty")
        if text.startswith("/"):
            return cls(path=text)
        match = _VID_PID.match(text)
        if match:
            return cls(vendor=int(match.group(1), 16), product=int(match.group(2), 16))
        return cls(name=text)

    def describe(self) -> str:
        if self.path:
            return self.path
        if self.vendor is not None and self.product is not None:
            return f"{self.vendor:04x}:{self.product:04x}"
        return f"name {self.name!r}"


class ScanAssembler:
    """Collects typed characters into scans; knows about suffixes, prefixes and lost events."""

    def __init__(self, keymap: KeyMap, prefix: str = "", suffix: str = "") -> None:
        self.keymap = keymap
        self.prefix = prefix
        self.suffix = suffix
        self._chars: list[str] = []
        self._tainted = False
        self.dropped = 0

    def key(self, code: int, value: int) -> str | None:
        """Feed one key event; return a finished scan's text when this key completed one."""
        ch = self.keymap.key(code, value)
        if ch is None:
            return None
        if ch == "\n":
            return self._finish()
        self._chars.append(ch)
        if len(self._chars) > MAX_SCAN_CHARS:
            log.warning("scanner typed %d characters without an end; discarded", MAX_SCAN_CHARS)
            self._chars.clear()
            self._tainted = True
            return None
        if self.suffix and "".join(self._chars[-len(self.suffix) :]) == self.suffix:
            return self._finish()
        return None

    def events_lost(self) -> None:
        """The kernel dropped events (SYN_DROPPED): the scan in progress may miss characters,
        and a code with a missing digit must never reach checkout, so it is thrown away."""
        self._tainted = True

    def _finish(self) -> str | None:
        text = "".join(self._chars)
        self._chars.clear()
        if self._tainted:
            self._tainted = False
            self.dropped += 1
            log.warning("scan discarded: input events were lost while it was typed")
            return None
        if self.suffix and text.endswith(self.suffix):
            text = text[: -len(self.suffix)]
        if self.prefix and text.startswith(self.prefix):
            text = text[len(self.prefix) :]
        return text or None


class EvdevScannerDriver:
    def __init__(
        self,
        config: EvdevScanner,
        *,
        backoff: RetryDelays,
        backend: Any = None,
    ) -> None:
        self.config = config
        self.selector = Selector.parse(config.device)
        self._backend = backend
        self._backoff = backoff
        self._device: InputDeviceLike | None = None
        self._detail = "not opened yet"
        self.assembler = ScanAssembler(KeyMap(config.layout), config.prefix, config.suffix)
        self.opened = 0
        """How many times the scanner was found and opened (re-plugs included)."""

    def status(self) -> DeviceStatus:
        present = self._device is not None
        detail = self._detail
        if self.assembler.dropped:
            detail = f"{detail}; {self.assembler.dropped} scan(s) discarded after lost events"
        return DeviceStatus(DeviceKind.SCANNER, "evdev", present=present, ok=present, detail=detail)

    def _evdev(self) -> Any:
        if self._backend is None:
            try:
                self._backend = importlib.import_module("evdev")
            except ImportError as exc:
                raise DeviceError(
                    "the evdev scanner driver needs the 'evdev' package: pip install 'edged[hid]'"
                ) from exc
        return self._backend

    def find(self) -> InputDeviceLike | None:
        """Open the configured scanner, or None when it is not plugged in."""
        evdev = self._evdev()
        sel = self.selector
        if sel.path is not None:
            try:
                return self._open(evdev, sel.path)
            except FileNotFoundError:
                return None
        for path in evdev.list_devices():
            try:
                dev = self._open(evdev, path)
            except DeviceError:
                continue
            if self._matches(dev):
                return dev
            dev.close()
        return None

    def _open(self, evdev: Any, path: str) -> InputDeviceLike:
        try:
            dev: InputDeviceLike = evdev.InputDevice(path)
        except PermissionError as exc:
            raise DeviceError(
                f"no permission to read {path}: add the service user to the 'input' group "
                "or install systemd/99-edged.rules"
            ) from exc
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise DeviceError(f"cannot open {path}: {exc.strerror or exc}") from exc
        return dev

    def _matches(self, dev: Any) -> bool:
        sel = self.selector
        if sel.vendor is not None:
            info = dev.info
            if (info.vendor, info.product) != (sel.vendor, sel.product):
                return False
        elif sel.name is not None and dev.name != sel.name:
            return False
        # A scanner exposes several event nodes (keyboard, consumer keys); we want the one
        # that can type letters and Enter.
        keys = dev.capabilities().get(EV_KEY, [])
        return KEY_A in keys and KEY_ENTER in keys

    async def run(self, emit: ScanSink) -> None:
        while True:
            try:
                dev = self.find()
            except FileNotFoundError:
                dev = None
            if dev is None:
                self._detail = f"scanner not found ({self.selector.describe()})"
                delay = self._backoff.next_delay()
                log.info("%s; looking again in %.1f s", self._detail, delay)
                await asyncio.sleep(delay)
                continue
            self._attach(dev)
            try:
                await self._read(dev, emit)
            except OSError as exc:
                if exc.errno not in (errno.ENODEV, errno.EIO):
                    self._release()
                    raise DeviceError(f"scanner read failed: {exc}") from exc
                log.warning("scanner %s unplugged", dev.path)
                self._release()
                self._detail = "scanner unplugged; waiting for it to return"
            await asyncio.sleep(self._backoff.next_delay())

    def _attach(self, dev: InputDeviceLike) -> None:
        if self.config.grab:
            try:
                dev.grab()
            except OSError as exc:
                dev.close()
                if exc.errno == errno.EBUSY:
                    raise DeviceError(
                        f"scanner {dev.path} is grabbed by another process (see `edged doctor`)"
                    ) from exc
                raise DeviceError(f"cannot grab scanner {dev.path}: {exc}") from exc
        self._device = dev
        self.opened += 1
        self._backoff.reset()
        self.assembler.keymap.reset(set(dev.active_keys()))
        self._detail = f"{dev.name} at {dev.path}"
        log.info("scanner %s opened at %s", dev.name, dev.path)

    def _release(self) -> None:
        dev, self._device = self._device, None
        if dev is None:
            return
        for step in (dev.ungrab, dev.close):
            # The node may already be gone; there is nothing left to release then.
            with contextlib.suppress(OSError):
                step()

    async def _read(self, dev: InputDeviceLike, emit: ScanSink) -> None:
        syncing = False
        try:
            async for event in dev.async_read_loop():
                if event.type == EV_SYN:
                    if event.code == SYN_DROPPED:
                        # Kernel doc: drop everything up to the next SYN_REPORT, then re-read
                        # the device state.
                        syncing = True
                        self.assembler.events_lost()
                    elif event.code == SYN_REPORT and syncing:
                        syncing = False
                        self.assembler.keymap.reset(set(dev.active_keys()))
                    continue
                if syncing or event.type != EV_KEY:
                    continue
                text = self.assembler.key(event.code, event.value)
                if text is not None:
                    await emit(Scan(text=text, source="scanner", at=time.monotonic()))
        except asyncio.CancelledError:
            self._release()
            raise

    async def close(self) -> None:
        self._release()
