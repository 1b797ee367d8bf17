"""What every device driver shares: its health report and its failure type."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DeviceKind(StrEnum):
    SCANNER = "scanner"
    CAMERA = "camera"
    PRINTER = "printer"
    DISPLAY = "display"
    RELEASE = "release"


class DeviceError(Exception):
    """The device failed or is gone; the supervisor restarts its task with backoff."""


@dataclass(frozen=True)
class DeviceStatus:
    kind: DeviceKind
    driver: str
    present: bool
    ok: bool
    detail: str = ""
