"""Build each device's driver from its config section.

Real drivers are imported only when configured, so hardware-only packages (evdev, picamera2)
stay optional and a plain install runs on any Linux machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hal.config import (
    CameraConfig,
    DisplayConfig,
    NoCamera,
    PrinterConfig,
    ScannerConfig,
    SimCamera,
    SimDisplay,
    SimPrinter,
    SimScanner,
)
from hal.display.protocol import Display
from hal.printer.protocol import Printer
from hal.scanner.protocol import CodeReader


@dataclass
class Devices:
    scanner: CodeReader
    camera: CodeReader | None
    printer: Printer
    display: Display


def build_scanner(config: ScannerConfig) -> CodeReader:
    if isinstance(config, SimScanner):
        from hal.scanner.sim import SimulatedScanner

        return SimulatedScanner(config.script_file)
    raise NotImplementedError(f"scanner driver {config.driver!r} is not available yet")


def build_camera(config: CameraConfig) -> CodeReader | None:
    if isinstance(config, NoCamera):
        return None
    if isinstance(config, SimCamera):
        from hal.camera.sim import SimulatedCamera

        return SimulatedCamera()
    raise NotImplementedError(f"camera driver {config.driver!r} is not available yet")


def build_printer(config: PrinterConfig, data_dir: Path) -> Printer:
    if isinstance(config, SimPrinter):
        from hal.printer.sim import SimulatedPrinter

        return SimulatedPrinter(
            config.output_dir or data_dir / "printer", config.paper_mm, config.encoding
        )
    raise NotImplementedError(f"printer driver {config.driver!r} is not available yet")


def build_display(config: DisplayConfig) -> Display:
    if isinstance(config, SimDisplay):
        from hal.display.sim import SimulatedDisplay

        return SimulatedDisplay(echo=config.echo)
    raise NotImplementedError(f"display driver {config.driver!r} is not available yet")


def build_devices(
    scanner: ScannerConfig,
    camera: CameraConfig,
    printer: PrinterConfig,
    display: DisplayConfig,
    data_dir: Path,
) -> Devices:
    return Devices(
        scanner=build_scanner(scanner),
        camera=build_camera(camera),
        printer=build_printer(printer, data_dir),
        display=build_display(display),
    )
