"""Scanner on a serial port (RS-232 or a USB CDC/serial adapter), read through pyserial.

The port is opened non-blocking and read when the event loop says its fd is readable, so a
silent scanner costs nothing and a busy one never blocks the loop. A USB adapter that is
unplugged makes reads fail; the driver closes the port and reopens the configured path (ideally
the udev name /dev/edged-scanner) with backoff until it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import serial

from hal.config import SerialScanner
from hal.device import DeviceError, DeviceKind, DeviceStatus
from hal.retry import RetryDelays
from hal.scanner.protocol import Scan, ScanSink

log = logging.getLogger(__name__)

TERMINATORS = {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n"}
MAX_LINE_BYTES = 4096
"""Bytes without a terminator beyond this are noise (wrong baud rate, wrong device)."""


class LineSplitter:
    """Bytes in, complete codes out; stray CR/LF from a scanner set to CRLF are tolerated."""

    def __init__(self, terminator: bytes, prefix: str = "", encoding: str = "utf-8") -> None:
        self.terminator = terminator
        self.prefix = prefix
        self.encoding = encoding
        self._buffer = bytearray()
        self.discarded = 0

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data
        codes: list[str] = []
        while True:
            index = self._buffer.find(self.terminator)
            if index < 0:
                break
            raw = bytes(self._buffer[:index]).strip(b"\r\n")
            del self._buffer[: index + len(self.terminator)]
            if len(raw) > MAX_LINE_BYTES:
                log.warning("serial scanner sent a %d-byte line; discarded", len(raw))
                self.discarded += 1
                continue
            code = self._decode(raw)
            if code:
                codes.append(code)
        if len(self._buffer) > MAX_LINE_BYTES:
            log.warning(
                "serial scanner sent %d bytes with no terminator; discarded", MAX_LINE_BYTES
            )
            self._buffer.clear()
            self.discarded += 1
        return codes

    def reset(self) -> None:
        self._buffer.clear()

    @property
    def pending(self) -> int:
        """Bytes received since the last terminator: a code still arriving."""
        return len(self._buffer)

    def _decode(self, raw: bytes) -> str:
        try:
            text = raw.decode(self.encoding)
        except UnicodeDecodeError:
            # Garbled bytes (wrong baud rate) are not a code: never guess at a payment code.
            log.warning("serial scanner sent %d undecodable bytes; discarded", len(raw))
            self.discarded += 1
            return ""
        if self.prefix and text.startswith(self.prefix):
            text = text[len(self.prefix) :]
        return text


class SerialScannerDriver:
    def __init__(self, config: SerialScanner, *, backoff: RetryDelays) -> None:
        self.config = config
        self.splitter = LineSplitter(TERMINATORS[config.terminator], config.prefix, config.encoding)
        self._backoff = backoff
        self._port: serial.Serial | None = None
        self._detail = "not opened yet"
        self.opened = 0

    def status(self) -> DeviceStatus:
        present = self._port is not None
        return DeviceStatus(
            DeviceKind.SCANNER, "serial", present=present, ok=present, detail=self._detail
        )

    def _open(self) -> serial.Serial | None:
        try:
            port = serial.Serial(self.config.port, self.config.baudrate, timeout=0)
        except serial.SerialException as exc:
            cause = exc.__context__ or exc
            if isinstance(cause, PermissionError):
                raise DeviceError(
                    f"no permission to open {self.config.port}: add the service user to the "
                    "port's group (usually 'dialout') or install systemd/99-edged.rules"
                ) from exc
            self._detail = f"{self.config.port} not available: {exc}"
            return None
        self._port = port
        self.opened += 1
        self.splitter.reset()
        self._detail = f"open at {self.config.port}, {self.config.baudrate} baud"
        log.info("serial scanner opened at %s", self.config.port)
        return port

    def _close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(OSError, serial.SerialException):
                port.close()

    async def run(self, emit: ScanSink) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                port = self._open()
                if port is None:
                    delay = self._backoff.next_delay()
                    log.info("%s; retrying in %.1f s", self._detail, delay)
                    await asyncio.sleep(delay)
                    continue
                self._backoff.reset()
                await self._pump(loop, port, emit)
                self._close()
                self._detail = f"{self.config.port} disconnected; waiting for it to return"
                log.warning("serial scanner at %s disconnected", self.config.port)
                await asyncio.sleep(self._backoff.next_delay())
        finally:
            self._close()

    async def _pump(
        self, loop: asyncio.AbstractEventLoop, port: serial.Serial, emit: ScanSink
    ) -> None:
        """Read until the port fails; each readable event drains what the kernel holds."""
        readable = asyncio.Event()
        fd = port.fileno()
        loop.add_reader(fd, readable.set)
        try:
            while True:
                await readable.wait()
                readable.clear()
                try:
                    data = port.read(max(1, port.in_waiting))
                except (OSError, serial.SerialException):
                    # EIO / "readiness to read but returned no data": the adapter is gone.
                    return
                for code in self.splitter.feed(data):
                    await emit(Scan(text=code, source="scanner", at=time.monotonic()))
        finally:
            loop.remove_reader(fd)

    async def close(self) -> None:
        self._close()
