"""A simulated display: it keeps every view shown (captured frames) and can echo them."""

from __future__ import annotations

import sys
from collections import deque

from hal.device import DeviceKind, DeviceStatus
from hal.display.view import DisplayView


class SimulatedDisplay:
    def __init__(self, echo: bool = False, keep: int = 200) -> None:
        self.frames: deque[DisplayView] = deque(maxlen=keep)
        self._echo = echo

    @property
    def current(self) -> DisplayView | None:
        return self.frames[-1] if self.frames else None

    def status(self) -> DeviceStatus:
        return DeviceStatus(DeviceKind.DISPLAY, "sim", present=True, ok=True)

    async def show(self, view: DisplayView) -> None:
        self.frames.append(view)
        if self._echo:
            top, bottom = view.pole_lines()
            sys.stdout.write(f"[display] {top} | {bottom}\n")
            sys.stdout.flush()

    async def close(self) -> None:
        return None
