"""The release seam: unlock a slot (or the one door) for a while, and hear what the door did.

A slot is numbered from 1; a counter with one door has slot 1 only. `release()` energises the
slot's lock and returns; what follows arrives through `run()`'s sink as `DoorEvent`s:

    opened     the door sensor saw the door open (the lock is de-energised at once, so the
               door latches again when it closes)
    not_opened nobody opened it within `open_within_s`: the lock was de-energised again
    closed     the door closed after it was opened
    left_open  it has been open longer than `left_open_s` (an alarm; `closed` follows later)
    pulsed     no door sensor: the lock was energised for `open_within_s` and is locked again;
               nobody can tell whether the door was opened
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from hal.device import DeviceStatus


class DoorEventKind(StrEnum):
    OPENED = "opened"
    CLOSED = "closed"
    NOT_OPENED = "not_opened"
    LEFT_OPEN = "left_open"
    PULSED = "pulsed"


@dataclass(frozen=True)
class DoorEvent:
    slot: int
    kind: DoorEventKind
    at: float
    """Monotonic time the driver saw it."""


DoorEventSink = Callable[[DoorEvent], Awaitable[None]]


class ReleaseDevice(Protocol):
    @property
    def slots(self) -> int:
        """How many slots (doors) the device has; they are numbered 1..slots."""
        ...

    @property
    def has_sensor(self) -> bool: ...

    def status(self) -> DeviceStatus: ...

    async def run(self, emit: DoorEventSink, ready: Callable[[], None] | None = None) -> None:
        """Watch the door sensors until cancelled, awaiting `emit` for each event. Starting
        de-energises every lock (a relay left on by a crash never stays on), then calls
        `ready`: from then on `release()` works. Raise DeviceError when the device fails."""
        ...

    async def release(self, slot: int, *, open_within_s: float, left_open_s: float) -> None:
        """Energise the slot's lock; return once the relay was told. Raise DeviceError when
        it could not be (then the lock stays locked), ValueError for a slot that does not
        exist, and DeviceError when `run()` is not running (no one would hear the door)."""
        ...

    async def relock(self, slot: int) -> None:
        """De-energise the slot's lock now (and stop its timers)."""
        ...

    async def door_open(self, slot: int) -> bool | None:
        """What the door sensor reads now: True open, False closed, None without a sensor."""
        ...

    async def close(self) -> None: ...
