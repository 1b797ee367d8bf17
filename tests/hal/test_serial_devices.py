"""Serial scanner and pole display, each through a real pseudo-terminal pair."""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial
import serial.serialposix

from edged.runtime.backoff import Backoff
from hal.config import SerialDisplay, SerialScanner
from hal.device import DeviceError
from hal.display.serial_vfd import SerialPoleDisplay, fit, marquee
from hal.display.view import DisplayView
from hal.scanner.protocol import Scan
from hal.scanner.serial_port import SerialScannerDriver
from tests.hal.helpers import until
from tests.support.pty import Pty


@pytest.fixture
def pty_link(tmp_path: Path) -> Iterator[Pty]:
    pair = Pty(tmp_path / "edged-device")
    yield pair
    if pair.master >= 0:
        os.close(pair.master)


async def run_scanner(
    driver: SerialScannerDriver,
) -> tuple[asyncio.Task[None], asyncio.Queue[Scan]]:
    scans: asyncio.Queue[Scan] = asyncio.Queue()

    async def emit(scan: Scan) -> None:
        scans.put_nowait(scan)

    return asyncio.create_task(driver.run(emit)), scans


async def next_code(scans: asyncio.Queue[Scan]) -> str:
    return (await asyncio.wait_for(scans.get(), 2)).text


async def test_serial_scanner_reads_codes_split_across_writes(pty_link: Pty) -> None:
    config = SerialScanner(driver="serial", port=str(pty_link.link), terminator="CR", prefix="#")
    driver = SerialScannerDriver(config, backoff=Backoff(0.5, 5.0))
    task, scans = await run_scanner(driver)
    try:
        await until(lambda: driver.status().present)
        pty_link.write(b"#69012345")
        # The driver has read the first half before the rest is written: a real split.
        await until(lambda: driver.splitter.pending == len(b"#69012345"), what="half a code")
        assert scans.empty()
        pty_link.write(b"67892\r\n134567890123456789\r")
        assert await next_code(scans) == "6901234567892"
        assert await next_code(scans) == "134567890123456789"
        pty_link.write("订单A1\r".encode())
        assert await next_code(scans) == "订单A1"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_serial_scanner_drops_garbage_and_survives_it(pty_link: Pty) -> None:
    config = SerialScanner(driver="serial", port=str(pty_link.link), terminator="LF")
    driver = SerialScannerDriver(config, backoff=Backoff(0.5, 5.0))
    task, scans = await run_scanner(driver)
    try:
        await until(lambda: driver.status().present)
        pty_link.write(b"\xff\xfe\x80\n" + b"x" * 5000 + b"OK1\n" + b"4006381333931\n")
        assert await next_code(scans) == "4006381333931"
        assert driver.splitter.discarded == 2 and scans.empty()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_serial_scanner_reconnects_after_unplug(pty_link: Pty) -> None:
    config = SerialScanner(driver="serial", port=str(pty_link.link))
    driver = SerialScannerDriver(config, backoff=Backoff(0.02, 0.05, jitter=False))
    attempts: list[bool] = []
    really_open = driver._open

    def counted_open() -> serial.Serial | None:
        port = really_open()
        attempts.append(port is not None)
        return port

    driver._open = counted_open  # type: ignore[method-assign]  # observed, not replaced
    task, scans = await run_scanner(driver)
    try:
        await until(lambda: driver.status().present)
        attempts.clear()
        pty_link.unplug()
        await until(lambda: not driver.status().present)
        assert "disconnected" in driver.status().detail or "not available" in driver.status().detail
        # Absent for a while: the driver keeps looking, sleeping between attempts.
        await until(lambda: len(attempts) >= 3, what="three attempts to reopen")
        assert not task.done() and driver.opened == 1
        pty_link.plug()
        await until(lambda: driver.status().present)
        pty_link.write(b"555\r")
        assert await next_code(scans) == "555"
        assert driver.opened == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_serial_scanner_permission_problem_says_how_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = tmp_path / "ttyX"
    node.write_text("")
    node.chmod(0)
    if os.geteuid() == 0:
        # root bypasses file modes, so the kernel's EACCES is played at pyserial's os.open
        real_open = serial.serialposix.os.open

        def deny(path: str, flags: int, *args: object) -> int:
            if path == str(node):
                raise PermissionError(errno.EACCES, "Permission denied", path)
            return real_open(path, flags, *args)

        monkeypatch.setattr(serial.serialposix.os, "open", deny)
    driver = SerialScannerDriver(
        SerialScanner(driver="serial", port=str(node)), backoff=Backoff(0.5, 5.0)
    )
    with pytest.raises(DeviceError, match="dialout"):
        await driver.run(lambda scan: asyncio.sleep(0))


# -- pole display ----------------------------------------------------------------------------


async def shown(pty: Pty, complete: Callable[[bytes], bool]) -> bytes:
    """Read what the display was sent until `complete` says the frame is all there."""
    data = b""

    def arrived() -> bool:
        nonlocal data
        data += pty.read_all()
        return complete(data)

    await until(arrived, what="the display frame")
    return data


def screen(data: bytes, columns: int = 20, rows: int = 2, encoding: str = "ascii") -> list[str]:
    """What a 2x20 VFD shows after receiving `data` (ESC @, FF, US $ x y, text)."""
    cells = [[" "] * columns for _ in range(rows)]
    col = row = 0
    i = 0
    while i < len(data):
        b = data[i]
        if data[i : i + 2] == b"\x1b\x40" or b == 0x0C:
            cells = [[" "] * columns for _ in range(rows)]
            col = row = 0
            i += 2 if b == 0x1B else 1
        elif data[i : i + 2] == b"\x1f\x24":
            col, row = data[i + 2] - 1, data[i + 3] - 1
            i += 4
        elif data[i : i + 2] == b"\x1f\x43":
            i += 3
        else:
            # one character, possibly multi-byte
            for size in (1, 2, 4):
                try:
                    ch = data[i : i + size].decode(encoding)
                    break
                except UnicodeDecodeError:
                    continue
            if col < columns:
                cells[row][col] = ch
                if encoding != "ascii" and ord(ch) > 0x2E80:
                    col += 1
            col += 1
            i += size
    return ["".join(r).replace("\x00", "") for r in cells]


async def test_pole_display_shows_headline_and_right_aligned_amount(pty_link: Pty) -> None:
    display = SerialPoleDisplay(SerialDisplay(driver="serial", port=str(pty_link.link)))
    try:
        await display.show(DisplayView(headline="Total", amount="12.50"))
        data = await shown(pty_link, lambda d: len(screen(d)[1].strip()) > 0)
        assert data.startswith(b"\x1b\x40")
        assert screen(data) == ["Total" + " " * 15, " " * 15 + "12.50"]
        assert display.status().present
    finally:
        await display.close()


async def test_pole_display_scrolls_a_long_headline(pty_link: Pty) -> None:
    config = SerialDisplay(driver="serial", port=str(pty_link.link))
    display = SerialPoleDisplay(config, scroll_interval_s=0.02)
    text = "Welcome - scan your first item please"
    try:
        await display.show(DisplayView(headline=text, lines=["Cola 3.00"]))
        await until(lambda: display.frames_sent >= 3, what="three frames of the marquee")
        data = pty_link.read_all()
        first = screen(data[: data.index(b"\x1f\x24\x01\x01", 10)])
        assert first == [text[:20], "Cola 3.00" + " " * 11]
        assert display.frames_sent >= 3
        tops = {marquee(text, 20, s) for s in range(display.frames_sent)}
        assert screen(data)[0] in tops and screen(data)[0] != text[:20]
    finally:
        await display.close()


def test_fit_handles_chinese_width_and_unknown_characters() -> None:
    assert fit("应付 12.00", 12, "right") == "  应付 12.00"  # CJK takes two cells
    assert fit("应付应付", 5) == "应付 "  # a wide character never gets cut in half
    assert fit("a  b", 5) == "a b  "


async def test_pole_display_gone_raises_and_comes_back(pty_link: Pty) -> None:
    display = SerialPoleDisplay(SerialDisplay(driver="serial", port=str(pty_link.link)))
    try:
        await display.show(DisplayView(headline="Hello"))
        pty_link.unplug()
        with pytest.raises(DeviceError):
            await display.show(DisplayView(headline="Again"))
            await display.show(DisplayView(headline="Again"))
        assert not display.status().present
        pty_link.plug()
        await display.show(DisplayView(headline="Back", amount="1.00"))
        data = await shown(pty_link, lambda d: "1.00" in screen(d)[1])
        assert screen(data)[0].startswith("Back")
    finally:
        await display.close()
