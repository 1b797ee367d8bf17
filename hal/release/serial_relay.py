"""USB-serial relay boards (the common CH340 "LCUS" boards) through pyserial.

Each command is four bytes: `A0 <channel> <state> <sum>`, state 01 on and 00 off, sum the
low byte of the first three added (channel 1 on: `A0 01 01 A2`). The boards answer nothing,
so a command counts as given once it was written and flushed; an unplugged adapter makes the
write fail, the lock stays as it was (off after the board lost power) and the error says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor

import serial

from hal.device import DeviceError

log = logging.getLogger(__name__)

START = 0xA0


def frame(channel: int, on: bool) -> bytes:
    """The 4-byte command that switches one relay channel."""
    if not 1 <= channel <= 0xFF:
        raise ValueError(f"relay channel {channel} is out of range 1-255")
    state = 1 if on else 0
    return bytes([START, channel, state, (START + channel + state) & 0xFF])


class SerialRelayBoard:
    driver = "serial"

    def __init__(self, port: str, baudrate: int, channels: list[int]) -> None:
        self.port_name = port
        self.baudrate = baudrate
        self.channels = channels
        """The relay channel of slot 1, 2, ..."""
        self._port: serial.Serial | None = None
        self._detail = "not opened yet"
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="release-relay")
        self._lock = asyncio.Lock()

    def present(self) -> tuple[bool, str]:
        return self._port is not None, self._detail

    def _channel(self, slot: int) -> int:
        return self.channels[slot - 1]

    # -- blocking side ---------------------------------------------------------------------

    def _ensure_open(self) -> serial.Serial:
        if self._port is not None:
            return self._port
        try:
            port = serial.Serial(self.port_name, self.baudrate, timeout=1, write_timeout=2)
        except serial.SerialException as exc:
            cause = exc.__context__ or exc
            if isinstance(cause, PermissionError):
                self._detail = (
                    f"no permission to open {self.port_name}: add the service user to the "
                    "port's group (usually 'dialout') or install systemd/99-edged.rules"
                )
            else:
                self._detail = f"cannot open {self.port_name}: {exc}"
            raise DeviceError(self._detail) from exc
        self._port = port
        self._detail = f"open at {self.port_name}, {self.baudrate} baud"
        log.info("relay board opened at %s", self.port_name)
        return port

    def _write(self, data: bytes) -> None:
        port = self._ensure_open()
        try:
            port.write(data)
            port.flush()
        except (OSError, serial.SerialException) as exc:
            self._drop()
            self._detail = f"relay board at {self.port_name} failed: {exc}"
            raise DeviceError(self._detail) from exc

    def _drop(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(OSError, serial.SerialException):
                port.close()

    # -- async side ------------------------------------------------------------------------

    async def _send(self, data: bytes) -> None:
        async with self._lock:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._write, data)

    async def open(self) -> None:
        await self._send(b"".join(frame(channel, False) for channel in self.channels))

    async def set(self, slot: int, on: bool) -> None:
        await self._send(frame(self._channel(slot), on))

    async def close(self) -> None:
        async with self._lock:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._drop)
        self._executor.shutdown(wait=False)
