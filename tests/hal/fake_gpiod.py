"""A stand-in for the libgpiod v2 Python bindings (`gpiod`), following their documented API.

`gpiod.request_lines(path, consumer=..., config={offsets: LineSettings(...)})` returns a
LineRequest with `get_value(offset)`, `set_value(offset, Value)`, `fd`, `wait_edge_events(
timeout)`, `read_edge_events(max_events=None)` and `release()`; `gpiod.line` holds the enums
Value, Direction, Edge, Bias, Drive, Clock; `gpiod.EdgeEvent.Type` is RISING_EDGE /
FALLING_EDGE, with `line_offset`, `timestamp_ns`, `global_seqno`, `line_seqno`. Values are
logical (active_low already applied), as in libgpiod. A missing chip raises
FileNotFoundError, a line already requested OSError(EBUSY), like the real bindings.

The test side is `FakeChip`: it holds the lines' physical levels, so a test flips a door
switch with `chip.drive(offset, level)` and reads relays with `chip.level(offset)`; edge
events are written to a pipe whose read end is the request's `fd`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import sys
import time
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from typing import Any


class Value(Enum):
    INACTIVE = 0
    ACTIVE = 1


class Direction(Enum):
    AS_IS = 1
    INPUT = 2
    OUTPUT = 3


class Bias(Enum):
    AS_IS = 1
    UNKNOWN = 2
    DISABLED = 3
    PULL_UP = 4
    PULL_DOWN = 5


class Drive(Enum):
    PUSH_PULL = 1
    OPEN_DRAIN = 2
    OPEN_SOURCE = 3


class Edge(Enum):
    NONE = 1
    RISING = 2
    FALLING = 3
    BOTH = 4


class Clock(Enum):
    MONOTONIC = 1
    REALTIME = 2
    HTE = 3


@dataclass
class LineSettings:
    direction: Direction = Direction.AS_IS
    edge_detection: Edge = Edge.NONE
    bias: Bias = Bias.AS_IS
    drive: Drive = Drive.PUSH_PULL
    active_low: bool = False
    debounce_period: timedelta = timedelta()
    event_clock: Clock = Clock.MONOTONIC
    output_value: Value = Value.INACTIVE


@dataclass(frozen=True)
class EdgeEvent:
    class Type(Enum):
        RISING_EDGE = 1
        FALLING_EDGE = 2

    event_type: Type
    timestamp_ns: int
    line_offset: int
    global_seqno: int
    line_seqno: int


class RequestReleasedError(Exception):
    pass


@dataclass
class FakeChip:
    path: str
    num_lines: int = 32
    levels: dict[int, int] = field(default_factory=dict)
    """Physical level of each line (0/1); inputs float high (pull-up) until driven."""
    requested: dict[int, tuple[str, LineSettings, LineRequest]] = field(default_factory=dict)

    def level(self, offset: int) -> int:
        return self.levels.get(offset, 1)

    def drive(self, offset: int, level: int) -> None:
        """The outside world sets an input's physical level (a door switch moves)."""
        before = self.level(offset)
        self.levels[offset] = level
        owner = self.requested.get(offset)
        if owner is None or before == level:
            return
        _, settings, request = owner
        logical_before = before ^ settings.active_low
        logical_now = level ^ settings.active_low
        rising = logical_now and not logical_before
        wanted = {
            Edge.BOTH: True,
            Edge.RISING: rising,
            Edge.FALLING: not rising,
            Edge.NONE: False,
        }[settings.edge_detection]
        if wanted:
            request._queue_edge(offset, rising)


class LineRequest:
    def __init__(self, chip: FakeChip, consumer: str, lines: dict[int, LineSettings]) -> None:
        self._chip = chip
        self.consumer = consumer
        self.settings = lines
        self._released = False
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        self._events: list[EdgeEvent] = []
        self._seq = 0
        self.writes: list[tuple[int, Value]] = []

    @property
    def offsets(self) -> list[int]:
        return list(self.settings)

    @property
    def fd(self) -> int:
        self._check()
        return self._read_fd

    def _check(self) -> None:
        if self._released:
            raise RequestReleasedError()

    def _queue_edge(self, offset: int, rising: bool) -> None:
        self._seq += 1
        kind = EdgeEvent.Type.RISING_EDGE if rising else EdgeEvent.Type.FALLING_EDGE
        self._events.append(EdgeEvent(kind, time.monotonic_ns(), offset, self._seq, self._seq))
        os.write(self._write_fd, b"\x01")

    def get_value(self, line: int) -> Value:
        self._check()
        settings = self.settings[line]
        return Value(self._chip.level(line) ^ settings.active_low)

    def get_values(self, lines: Iterable[int] | None = None) -> list[Value]:
        return [self.get_value(line) for line in (lines or self.offsets)]

    def set_value(self, line: int, value: Value) -> None:
        self._check()
        settings = self.settings[line]
        if settings.direction is not Direction.OUTPUT:
            raise OSError(errno.EPERM, "line is not an output")
        self.writes.append((line, value))
        self._chip.levels[line] = value.value ^ settings.active_low

    def set_values(self, values: dict[int, Value]) -> None:
        for line, value in values.items():
            self.set_value(line, value)

    def wait_edge_events(self, timeout: timedelta | float | None = None) -> bool:
        self._check()
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        ready, _, _ = select.select([self._read_fd], [], [], seconds)
        return bool(ready)

    def read_edge_events(self, max_events: int | None = None) -> list[EdgeEvent]:
        self._check()
        count = len(self._events) if max_events is None else min(max_events, len(self._events))
        taken, self._events = self._events[:count], self._events[count:]
        with contextlib.suppress(BlockingIOError):
            os.read(self._read_fd, max(1, count))
        return taken

    def release(self) -> None:
        self._check()
        self._released = True
        for offset in self.settings:
            self._chip.requested.pop(offset, None)
        os.close(self._read_fd)
        os.close(self._write_fd)


class FakeGpiod:
    """The module object handed to the drivers: `gpiod` as far as they can tell."""

    def __init__(self, *chips: FakeChip) -> None:
        self.chips = {chip.path: chip for chip in chips}
        self.module = types.ModuleType("gpiod")
        line = types.ModuleType("gpiod.line")
        for enum in (Value, Direction, Bias, Drive, Edge, Clock):
            setattr(line, enum.__name__, enum)
        module: Any = self.module
        module.line = line
        module.LineSettings = LineSettings
        module.EdgeEvent = EdgeEvent
        module.LineRequest = LineRequest
        module.RequestReleasedError = RequestReleasedError
        module.request_lines = self.request_lines

    def request_lines(
        self,
        path: str,
        consumer: str | None = None,
        config: dict[Any, LineSettings | None] | None = None,
        **_kwargs: Any,
    ) -> LineRequest:
        chip = self.chips.get(path)
        if chip is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        lines: dict[int, LineSettings] = {}
        for key, settings in (config or {}).items():
            offsets = [key] if isinstance(key, int) else list(key)
            for offset in offsets:
                if not 0 <= offset < chip.num_lines:
                    raise ValueError(f"line offset {offset} out of range")
                lines[offset] = settings or LineSettings()
        busy = [offset for offset in lines if offset in chip.requested]
        if busy:
            raise OSError(errno.EBUSY, "Device or resource busy")
        request = LineRequest(chip, consumer or "", lines)
        for offset, settings in lines.items():
            chip.requested[offset] = (consumer or "", settings, request)
            if settings.direction is Direction.OUTPUT:
                chip.levels[offset] = settings.output_value.value ^ settings.active_low
        return request


def installed(fake: FakeGpiod) -> types.ModuleType:
    """Put the fake where `import gpiod` finds it (remove with `sys.modules.pop("gpiod")`)."""
    sys.modules["gpiod"] = fake.module
    sys.modules["gpiod.line"] = fake.module.line  # type: ignore[attr-defined]
    return fake.module
