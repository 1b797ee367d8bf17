"""The display seam: show a view."""

from __future__ import annotations

from typing import Protocol

from hal.device import DeviceStatus
from hal.display.view import DisplayView


class Display(Protocol):
    def status(self) -> DeviceStatus: ...

    async def show(self, view: DisplayView) -> None:
        """Show the view; raise DeviceError when the display is gone."""
        ...

    async def close(self) -> None: ...
