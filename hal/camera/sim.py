"""A simulated camera: decoded codes are fed in directly (image files come with the decoder)."""

from __future__ import annotations

from hal.device import DeviceKind
from hal.scanner.sim import SimulatedReader


class SimulatedCamera(SimulatedReader):
    def __init__(self) -> None:
        super().__init__(DeviceKind.CAMERA)
