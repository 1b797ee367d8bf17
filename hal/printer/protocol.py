"""The printer seam: print a document or say precisely why not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hal.device import DeviceError, DeviceStatus
from hal.printer.document import PrintDocument


@dataclass(frozen=True)
class PaperState:
    online: bool = True
    paper_out: bool = False
    paper_near_end: bool = False
    cover_open: bool = False

    @property
    def ready(self) -> bool:
        return self.online and not self.paper_out and not self.cover_open

    def problem(self) -> str:
        if not self.online:
            return "printer offline"
        if self.cover_open:
            return "printer cover open"
        if self.paper_out:
            return "printer out of paper"
        return ""


class PrinterNotReady(DeviceError):
    """The printer answered but cannot print now (paper, cover); the job must wait."""

    def __init__(self, state: PaperState) -> None:
        super().__init__(state.problem() or "printer not ready")
        self.state = state


class Printer(Protocol):
    def status(self) -> DeviceStatus: ...

    async def paper_state(self) -> PaperState:
        """Ask the printer now; raise DeviceError when it cannot be reached."""
        ...

    async def print(self, document: PrintDocument) -> None:
        """Return only once the printer accepted the whole document; raise otherwise."""
        ...

    async def open_drawer(self) -> None:
        """Pulse the cash drawer on the printer's drawer port; raise when it cannot be sent."""
        ...

    async def close(self) -> None: ...
