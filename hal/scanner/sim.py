"""A simulated scanner: codes come from a queue (fed by the control socket), a file, or stdin."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hal.device import DeviceKind, DeviceStatus
from hal.scanner.protocol import Scan, ScanSink


class SimulatedReader:
    """Shared by the simulated scanner and camera: both just hand over text."""

    def __init__(self, kind: DeviceKind, script_file: Path | None = None) -> None:
        self._kind = kind
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        if script_file is not None:
            for line in script_file.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    self._queue.put_nowait(line.strip())

    def feed(self, text: str) -> None:
        self._queue.put_nowait(text)

    def status(self) -> DeviceStatus:
        return DeviceStatus(self._kind, "sim", present=True, ok=True)

    async def run(self, emit: ScanSink) -> None:
        while True:
            text = await self._queue.get()
            await emit(Scan(text=text, source=self._kind.value, at=time.monotonic()))


class SimulatedScanner(SimulatedReader):
    def __init__(self, script_file: Path | None = None) -> None:
        super().__init__(DeviceKind.SCANNER, script_file)
