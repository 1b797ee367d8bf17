"""The customer display as checkout sees it on a vending counter.

While a door is released the shopper must read "take your items" and "please close the
door", not the welcome screen checkout shows once the receipt has printed. So checkout's
views wait here while a release is in progress and the newest one is shown a moment after
the release ended (after its own last words, "thank you" or the refund notice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from hal.device import DeviceError, DeviceStatus
from hal.display.protocol import Display
from hal.display.view import DisplayView

log = logging.getLogger("edged.release")

AFTER_RELEASE_S = 3.0
"""How long the release's last words stay before a held view replaces them."""


class DisplayGate:
    def __init__(self, display: Display, after_release_s: float = AFTER_RELEASE_S) -> None:
        self._display = display
        self._after_release_s = after_release_s
        self._holding = False
        self._held: DisplayView | None = None
        self._opening: asyncio.Task[None] | None = None

    @property
    def holding(self) -> bool:
        return self._holding

    def status(self) -> DeviceStatus:
        return self._display.status()

    async def show(self, view: DisplayView) -> None:
        if self._holding:
            self._held = view
            return
        await self._display.show(view)

    async def close(self) -> None:
        """The real display is closed by whoever opened it; only the pending work stops."""
        if self._opening is not None:
            self._opening.cancel()

    def hold(self) -> None:
        if self._opening is not None:
            self._opening.cancel()
            self._opening = None
        self._holding = True

    def open_soon(self) -> None:
        """The release ended: show what was held once its last words had their moment."""
        if not self._holding or self._opening is not None:
            return
        self._opening = asyncio.get_running_loop().create_task(self._open_later())

    async def _open_later(self) -> None:
        await asyncio.sleep(self._after_release_s)
        self._holding = False
        self._opening = None
        held, self._held = self._held, None
        if held is not None:
            with contextlib.suppress(DeviceError):
                await self._display.show(held)
