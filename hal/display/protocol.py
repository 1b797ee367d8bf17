"""The display seam: show a view."""

from __future__ import annotations

import logging
from typing import Protocol

from hal.device import DeviceError, DeviceStatus
from hal.display.view import DisplayView


class Display(Protocol):
    def status(self) -> DeviceStatus: ...

    async def show(self, view: DisplayView) -> None:
        """Show the view; raise DeviceError when the display is gone."""
        ...

    async def close(self) -> None: ...


async def show_or_log(display: Display, view: DisplayView, log: logging.Logger) -> None:
    """Show `view`; a display that fails is logged on `log` and skipped, never raised: what
    the view tells has been committed already, and a broken display must not undo it."""
    try:
        await display.show(view)
    except DeviceError as exc:
        log.warning("display failed", extra={"reason": str(exc)})
