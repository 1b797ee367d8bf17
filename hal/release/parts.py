"""What a release device is made of: a relay (one channel per slot) and maybe door sensors.

`door.RelayDoor` turns any relay and sensor into the `ReleaseDevice` seam, so the timing
rules (not opened in time, left open) are written once for every driver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

SensorChanged = Callable[[int, bool], None]
"""(slot, door open) whenever a door sensor reports a change."""


class Relay(Protocol):
    driver: str

    def present(self) -> tuple[bool, str]:
        """Whether the relay is reachable now, and a line that says so."""
        ...

    async def open(self) -> None:
        """Reach the relay and switch every channel off. Raise DeviceError when it fails."""
        ...

    async def set(self, slot: int, on: bool) -> None:
        """Switch one slot's channel; return once the relay was told. Raise DeviceError."""
        ...

    async def close(self) -> None: ...


class DoorSensor(Protocol):
    driver: str

    async def open(self) -> None:
        """Start reading the sensors. Raise DeviceError when they cannot be read."""
        ...

    async def read(self, slot: int) -> bool:
        """True when the slot's door is open now."""
        ...

    async def watch(self, changed: SensorChanged) -> None:
        """Call `changed` for every change until cancelled; raise DeviceError on failure."""
        ...

    def lock_energised(self, slot: int) -> None:
        """The slot's lock was just energised: the simulated door plays its shopper's script;
        a real switch has nothing to do."""
        ...

    async def close(self) -> None: ...
