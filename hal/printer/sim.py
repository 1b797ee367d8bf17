"""A simulated printer: each job becomes an ESC/POS file and a text rendering on disk.

Tests and the demo can set its paper state to exercise paper-out and cover-open handling.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hal.device import DeviceKind, DeviceStatus
from hal.printer.document import PrintDocument
from hal.printer.escpos_lib import escpos_printers
from hal.printer.layout import COLUMNS_BY_PAPER_MM
from hal.printer.protocol import PaperState, PrinterNotReady
from hal.printer.render import render_escpos, render_text


class SimulatedPrinter:
    def __init__(self, output_dir: Path, paper_mm: int = 80, encoding: str = "gb18030") -> None:
        self.output_dir = output_dir
        self.width = COLUMNS_BY_PAPER_MM[paper_mm]
        self.encoding = encoding
        self.state = PaperState()
        self.printed = 0
        self.drawer_kicks = 0
        output_dir.mkdir(parents=True, exist_ok=True)
        self._count = len(list(output_dir.glob("receipt-*.txt")))

    def status(self) -> DeviceStatus:
        return DeviceStatus(
            DeviceKind.PRINTER,
            "sim",
            present=True,
            ok=self.state.ready,
            detail=self.state.problem(),
        )

    async def paper_state(self) -> PaperState:
        return self.state

    async def print(self, document: PrintDocument) -> None:
        if not self.state.ready:
            raise PrinterNotReady(self.state)
        self._count += 1
        stem = self.output_dir / f"receipt-{self._count:06d}"
        await asyncio.to_thread(self._render_to_files, document, stem)
        self.printed += 1

    async def open_drawer(self) -> None:
        """The simulated drawer: one line per kick in `drawer.log`, beside the receipts."""
        self.drawer_kicks += 1
        line = f"drawer opened ({self.drawer_kicks})\n"
        await asyncio.to_thread(self._append, self.output_dir / "drawer.log", line)

    async def close(self) -> None:
        return None

    @staticmethod
    def _append(path: Path, line: str) -> None:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(line)

    def _render_to_files(self, document: PrintDocument, stem: Path) -> None:
        """Off the loop: the first call imports python-escpos."""
        dummy = escpos_printers().Dummy()
        render_escpos(dummy, document, self.width, self.encoding)
        stem.with_suffix(".bin").write_bytes(dummy.output)
        stem.with_suffix(".txt").write_text(render_text(document, self.width), encoding="utf-8")
