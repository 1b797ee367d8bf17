"""Serial customer pole display (2x20 VFD) speaking the ESC/POS display command set.

The shopper reads two short lines: the view's headline and its amount (or first line). Lines
are fitted to the display's width (CJK characters take two cells); a headline too long to fit
scrolls as a marquee so the shopper can still read all of it. Every frame redraws both lines
in full, so a display that was power cycled shows the right thing at the next update.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor

import serial

from hal.config import SerialDisplay
from hal.device import DeviceError, DeviceKind, DeviceStatus
from hal.display.view import DisplayView
from hal.printer.layout import clip, text_width

log = logging.getLogger(__name__)

INIT = b"\x1b\x40"  # ESC @
CLEAR = b"\x0c"  # FF / CLR: clear screen, cursor home
CURSOR_OFF = b"\x1f\x43\x00"  # US C 0


def cursor(column: int, row: int) -> bytes:
    """US $ x y: move to column x, row y (both 1-based)."""
    return b"\x1f\x24" + bytes([column, row])


def fit(text: str, width: int, align: str = "left") -> str:
    text = clip(" ".join(text.split()), width)
    pad = width - text_width(text)
    return " " * pad + text if align == "right" else text + " " * pad


def marquee(text: str, width: int, step: int) -> str:
    """The `step`-th frame of `text` scrolling right to left through `width` cells."""
    loop = text + "   "
    chars = list(loop)
    start = step % len(chars)
    rotated = "".join(chars[start:] + chars[:start])
    return fit(rotated, width)


class SerialPoleDisplay:
    def __init__(self, config: SerialDisplay, scroll_interval_s: float = 0.4) -> None:
        self.config = config
        self.scroll_interval_s = scroll_interval_s
        self._port: serial.Serial | None = None
        self._detail = "not opened yet"
        self._view: DisplayView | None = None
        self._scroller: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="pole-display")
        self.frames_sent = 0

    def status(self) -> DeviceStatus:
        present = self._port is not None
        return DeviceStatus(
            DeviceKind.DISPLAY, "serial", present=present, ok=present, detail=self._detail
        )

    def _encode(self, text: str) -> bytes:
        return text.encode(self.config.encoding, errors="replace")

    def _displayable(self, text: str) -> str:
        """Characters the display's font lacks become "?" before fitting, so widths add up."""
        enc = self.config.encoding
        return " ".join(text.encode(enc, errors="replace").decode(enc).split())

    def lines_for(self, view: DisplayView, step: int = 0) -> list[str]:
        top, bottom = view.pole_lines()
        width = self.config.columns
        rows = [top, bottom, *list(view.lines[1:] if view.amount is None else view.lines)]
        out = []
        for index in range(self.config.rows):
            text = self._displayable(rows[index]) if index < len(rows) else ""
            if index == 0 and text_width(text) > width:
                out.append(marquee(text, width, step))
            elif index == 1 and view.amount is not None:
                out.append(fit(text, width, "right"))
            else:
                out.append(fit(text, width))
        return out

    def frame(self, lines: list[str]) -> bytes:
        data = bytearray()
        for row, line in enumerate(lines, start=1):
            data += cursor(1, row) + self._encode(line)
        return bytes(data)

    # -- blocking side ---------------------------------------------------------------------

    def _open(self) -> serial.Serial:
        if self._port is not None:
            return self._port
        try:
            port = serial.Serial(self.config.port, self.config.baudrate, timeout=1, write_timeout=2)
        except serial.SerialException as exc:
            self._detail = f"cannot open {self.config.port}: {exc}"
            raise DeviceError(self._detail) from exc
        try:
            port.write(INIT + CURSOR_OFF + CLEAR)
        except (OSError, serial.SerialException) as exc:
            port.close()
            raise DeviceError(f"display at {self.config.port} failed: {exc}") from exc
        self._port = port
        self._detail = f"open at {self.config.port}"
        log.info("pole display opened at %s", self.config.port)
        return port

    def _send(self, data: bytes) -> None:
        port = self._open()
        try:
            port.write(data)
            port.flush()
        except (OSError, serial.SerialException) as exc:
            self._drop()
            self._detail = f"display at {self.config.port} failed: {exc}"
            raise DeviceError(self._detail) from exc
        self.frames_sent += 1

    def _drop(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(OSError, serial.SerialException):
                port.close()

    # -- async side ------------------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        async with self._lock:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._send, data)

    async def show(self, view: DisplayView) -> None:
        self._stop_scrolling()
        self._view = view
        await self._write(self.frame(self.lines_for(view)))
        if text_width(self._displayable(view.headline)) > self.config.columns:
            self._scroller = asyncio.create_task(self._scroll(view))

    async def _scroll(self, view: DisplayView) -> None:
        step = 0
        try:
            while self._view is view:
                await asyncio.sleep(self.scroll_interval_s)
                step += 1
                top = self.lines_for(view, step)[0]
                await self._write(self.frame([top]))
        except DeviceError:
            return  # reported by status(); the next show() reopens the port

    def _stop_scrolling(self) -> None:
        if self._scroller is not None:
            self._scroller.cancel()
            self._scroller = None

    async def close(self) -> None:
        self._stop_scrolling()
        self._view = None
        async with self._lock:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._drop)
        self._executor.shutdown(wait=False)
