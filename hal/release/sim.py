"""A simulated release device: a relay that records what it was told, and a scripted door.

The door follows a shopper script when its lock is energised (`takes`: opens after
`open_after_s`, closes `close_after_s` later; `never_opens`; `leaves_open`: opens and stays
open), or is moved by hand (`manual`, and `set_door` in any mode: `edged sim door`).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Literal

from hal.release.parts import SensorChanged

Shopper = Literal["takes", "never_opens", "leaves_open", "manual"]


@dataclass(frozen=True)
class RelayCommand:
    slot: int
    on: bool


class SimulatedRelay:
    driver = "sim"

    def __init__(self) -> None:
        self.commands: list[RelayCommand] = []
        self.energised: set[int] = set()

    def present(self) -> tuple[bool, str]:
        return True, "simulated relay"

    async def open(self) -> None:
        self.energised.clear()

    async def set(self, slot: int, on: bool) -> None:
        self.commands.append(RelayCommand(slot, on))
        if on:
            self.energised.add(slot)
        else:
            self.energised.discard(slot)

    @property
    def unlocks(self) -> int:
        return sum(1 for command in self.commands if command.on)

    async def close(self) -> None:
        return None


class SimulatedDoorSensor:
    driver = "sim"

    def __init__(
        self,
        slots: int,
        shopper: Shopper = "takes",
        open_after_s: float = 0.5,
        close_after_s: float = 2.0,
    ) -> None:
        self._open = dict.fromkeys(range(1, slots + 1), False)
        self.shopper: Shopper = shopper
        self.open_after_s = open_after_s
        self.close_after_s = close_after_s
        self._changed: SensorChanged | None = None
        self._scripts: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        return None

    async def read(self, slot: int) -> bool:
        return self._open[slot]

    async def watch(self, changed: SensorChanged) -> None:
        self._changed = changed
        try:
            await asyncio.Event().wait()
        finally:
            self._changed = None

    def set_door(self, slot: int, is_open: bool) -> None:
        """Open or close a door by hand (`edged sim door`)."""
        if slot not in self._open:
            raise ValueError(f"slot {slot} does not exist (1-{len(self._open)})")
        self._open[slot] = is_open
        if self._changed is not None:
            self._changed(slot, is_open)

    def lock_energised(self, slot: int) -> None:
        """The relay unlocked `slot`: play the shopper's script."""
        if self.shopper in ("never_opens", "manual"):
            return
        task = asyncio.get_running_loop().create_task(self._play(slot))
        self._scripts.add(task)
        task.add_done_callback(self._scripts.discard)

    async def _play(self, slot: int) -> None:
        await asyncio.sleep(self.open_after_s)
        self.set_door(slot, True)
        if self.shopper == "leaves_open":
            return
        await asyncio.sleep(self.close_after_s)
        self.set_door(slot, False)

    async def close(self) -> None:
        for task in list(self._scripts):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
