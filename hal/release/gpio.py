"""Relays and door switches on GPIO lines, through the libgpiod v2 Python bindings (`gpiod`).

`gpiod` is an optional extra (`pip install 'edged[gpio]'`), imported only when a GPIO driver
is built. Relay lines are requested as outputs, initially inactive (locked); door switch
lines as inputs with edge detection on both edges, bias and debounce from the config. The
request's file descriptor is watched by the event loop, so a quiet door costs nothing, and
each readable event is drained with `read_edge_events()`. A rising edge is the logical line
becoming active, which is "door open" (set `active_low` for switches that pull low when open).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from datetime import timedelta
from typing import Any

from hal.device import DeviceError
from hal.release.parts import SensorChanged

log = logging.getLogger(__name__)

BIAS = {"pull_up": "PULL_UP", "pull_down": "PULL_DOWN", "disabled": "DISABLED", "as_is": "AS_IS"}


def load_gpiod() -> Any:
    try:
        return importlib.import_module("gpiod")
    except ImportError as exc:
        raise DeviceError(
            "python package 'gpiod' (libgpiod v2 bindings) is not installed: "
            "pip install 'edged[gpio]'"
        ) from exc


def _request(gpiod: Any, chip: str, consumer: str, lines: list[int], settings: Any) -> Any:
    try:
        return gpiod.request_lines(chip, consumer=consumer, config={tuple(lines): settings})
    except (OSError, ValueError) as exc:
        raise DeviceError(f"cannot request GPIO lines {lines} on {chip}: {exc}") from exc


class GpioRelay:
    driver = "gpio"

    def __init__(
        self, chip: str, lines: list[int], active_low: bool = False, gpiod: Any = None
    ) -> None:
        self.chip = chip
        self.lines = lines
        self.active_low = active_low
        self._gpiod = gpiod
        self._request: Any = None
        self._detail = "not opened yet"

    def present(self) -> tuple[bool, str]:
        return self._request is not None, self._detail

    async def open(self) -> None:
        if self._request is not None:
            await self._all_off()
            return
        gpiod = self._gpiod = self._gpiod or load_gpiod()
        from_line = gpiod.line
        settings = gpiod.LineSettings(
            direction=from_line.Direction.OUTPUT,
            output_value=from_line.Value.INACTIVE,
            active_low=self.active_low,
        )
        try:
            self._request = _request(gpiod, self.chip, "edged-release", self.lines, settings)
        except DeviceError as exc:
            self._detail = str(exc)
            raise
        self._detail = f"lines {self.lines} on {self.chip}"

    async def _all_off(self) -> None:
        for slot in range(1, len(self.lines) + 1):
            await self.set(slot, False)

    async def set(self, slot: int, on: bool) -> None:
        if self._request is None:
            raise DeviceError(f"GPIO relay lines on {self.chip} are not requested")
        value = self._gpiod.line.Value
        try:
            self._request.set_value(self.lines[slot - 1], value.ACTIVE if on else value.INACTIVE)
        except OSError as exc:
            self._detail = f"GPIO relay on {self.chip} failed: {exc}"
            raise DeviceError(self._detail) from exc

    async def close(self) -> None:
        request, self._request = self._request, None
        if request is not None:
            with contextlib.suppress(OSError):
                request.release()


class GpioDoorSensor:
    driver = "gpio"

    def __init__(
        self,
        chip: str,
        lines: list[int],
        *,
        active_low: bool = False,
        bias: str = "pull_up",
        debounce_ms: int = 20,
        gpiod: Any = None,
    ) -> None:
        self.chip = chip
        self.lines = lines
        self.active_low = active_low
        self.bias = bias
        self.debounce_ms = debounce_ms
        self._gpiod = gpiod
        self._request: Any = None

    def _line(self) -> Any:
        return self._gpiod.line

    async def open(self) -> None:
        if self._request is not None:
            return
        gpiod = self._gpiod = self._gpiod or load_gpiod()
        line = self._line()
        settings = gpiod.LineSettings(
            direction=line.Direction.INPUT,
            edge_detection=line.Edge.BOTH,
            bias=getattr(line.Bias, BIAS[self.bias]),
            active_low=self.active_low,
            debounce_period=timedelta(milliseconds=self.debounce_ms),
        )
        self._request = _request(gpiod, self.chip, "edged-door", self.lines, settings)

    async def read(self, slot: int) -> bool:
        if self._request is None:
            await self.open()
        try:
            value = self._request.get_value(self.lines[slot - 1])
        except OSError as exc:
            raise DeviceError(f"cannot read the door switch on {self.chip}: {exc}") from exc
        return bool(value == self._line().Value.ACTIVE)

    async def watch(self, changed: SensorChanged) -> None:
        if self._request is None:
            await self.open()
        request = self._request
        rising = self._gpiod.EdgeEvent.Type.RISING_EDGE
        slot_of = {offset: index for index, offset in enumerate(self.lines, start=1)}
        readable = asyncio.Event()
        loop = asyncio.get_running_loop()
        fd = request.fd
        loop.add_reader(fd, readable.set)
        try:
            while True:
                await readable.wait()
                readable.clear()
                try:
                    events = request.read_edge_events()
                except OSError as exc:
                    raise DeviceError(f"door switch on {self.chip} failed: {exc}") from exc
                for event in events:
                    slot = slot_of.get(event.line_offset)
                    if slot is not None:
                        changed(slot, event.event_type == rising)
        finally:
            loop.remove_reader(fd)

    def lock_energised(self, slot: int) -> None:
        return None

    async def close(self) -> None:
        request, self._request = self._request, None
        if request is not None:
            with contextlib.suppress(OSError):
                request.release()
