"""The scanner seam: a driver turns a device into a stream of scanned codes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from hal.device import DeviceStatus


@dataclass(frozen=True)
class Scan:
    text: str
    source: str
    """`scanner` or `camera`: payment codes may be read by either."""
    at: float
    """Monotonic time of the read, for latency measurement and debouncing."""


ScanSink = Callable[[Scan], Awaitable[None]]


class CodeReader(Protocol):
    """Anything that reads codes: scanners and cameras alike."""

    def status(self) -> DeviceStatus: ...

    async def run(self, emit: ScanSink) -> None:
        """Read until cancelled, awaiting `emit` for each code; raise DeviceError on failure."""
        ...


Scanner = CodeReader
