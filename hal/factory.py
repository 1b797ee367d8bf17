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
    EvdevScanner,
    NetworkPrinter,
    NoCamera,
    PiCamera,
    PrinterConfig,
    ReleaseConfig,
    ScannerConfig,
    SerialPrinter,
    SerialScanner,
    SimCamera,
    SimDisplay,
    SimPrinter,
    SimScanner,
    UsbPrinter,
    V4l2Camera,
)
from hal.device import DeviceStatus
from hal.display.protocol import Display
from hal.printer.protocol import Printer
from hal.release.protocol import ReleaseDevice
from hal.retry import REOPEN_INITIAL_S, REOPEN_MAXIMUM_S, BackoffFactory
from hal.scanner.protocol import CodeReader


@dataclass
class Devices:
    scanner: CodeReader
    camera: CodeReader | None
    printer: Printer
    display: Display
    release: ReleaseDevice | None = None

    def statuses(self) -> list[DeviceStatus]:
        """Every configured device's health, as status pages and `evt/health` report it."""
        found = [self.scanner, self.camera, self.printer, self.display, self.release]
        return [device.status() for device in found if device is not None]


def build_scanner(config: ScannerConfig, backoff: BackoffFactory) -> CodeReader:
    if isinstance(config, SimScanner):
        from hal.scanner.sim import SimulatedScanner

        return SimulatedScanner(config.script_file)
    if isinstance(config, EvdevScanner):
        from hal.scanner.evdev_hid import EvdevScannerDriver

        return EvdevScannerDriver(config, backoff=backoff(REOPEN_INITIAL_S, REOPEN_MAXIMUM_S))
    if isinstance(config, SerialScanner):
        from hal.scanner.serial_port import SerialScannerDriver

        return SerialScannerDriver(config, backoff=backoff(REOPEN_INITIAL_S, REOPEN_MAXIMUM_S))
    raise ValueError(f"unknown scanner driver {config.driver!r}")


def build_camera(config: CameraConfig) -> CodeReader | None:
    if isinstance(config, NoCamera):
        return None
    if isinstance(config, SimCamera):
        from hal.camera.sim import SimulatedCamera

        if config.image_dir is None:
            return SimulatedCamera()
        from hal.camera.decoder import make_decoder

        return SimulatedCamera(
            config.image_dir,
            make_decoder(config.decoder, config.symbologies),
            poll_s=config.poll_s,
            debounce_s=config.debounce_s,
        )
    if isinstance(config, PiCamera):
        from hal.camera.picam import build_picamera_reader

        return build_picamera_reader(config)
    if isinstance(config, V4l2Camera):
        from hal.camera.v4l2 import build_v4l2_reader

        return build_v4l2_reader(config)
    raise ValueError(f"unknown camera driver {config.driver!r}")


def build_printer(config: PrinterConfig, data_dir: Path) -> Printer:
    if isinstance(config, SimPrinter):
        from hal.printer.sim import SimulatedPrinter

        return SimulatedPrinter(
            config.output_dir or data_dir / "printer", config.paper_mm, config.encoding
        )
    from hal.printer.escpos_device import EscposPrinter
    from hal.printer.transport import (
        NetworkTransport,
        SerialTransport,
        Transport,
        UsbTransport,
    )

    transport: Transport
    if isinstance(config, UsbPrinter):
        transport = UsbTransport(config)
    elif isinstance(config, SerialPrinter):
        transport = SerialTransport(config)
    elif isinstance(config, NetworkPrinter):
        transport = NetworkTransport(config)
    else:
        raise ValueError(f"unknown printer driver {config.driver!r}")
    return EscposPrinter(
        transport,
        config.driver,
        paper_mm=config.paper_mm,
        encoding=config.encoding,
        status_timeout_s=config.status_timeout_s,
        job_timeout_s=config.job_timeout_s,
        confirm_jobs=config.confirm_jobs,
    )


def build_display(config: DisplayConfig) -> Display:
    if isinstance(config, SimDisplay):
        from hal.display.sim import SimulatedDisplay

        return SimulatedDisplay(echo=config.echo)
    from hal.display.serial_vfd import SerialPoleDisplay

    return SerialPoleDisplay(config)


def build_release(config: ReleaseConfig) -> ReleaseDevice | None:
    """The door or slot locks; None when the device releases nothing (a kiosk)."""
    from hal.release.build import build_release_device

    return build_release_device(config)


def build_devices(
    scanner: ScannerConfig,
    camera: CameraConfig,
    printer: PrinterConfig,
    display: DisplayConfig,
    data_dir: Path,
    *,
    backoff: BackoffFactory,
    release: ReleaseConfig | None = None,
) -> Devices:
    """`backoff` is edged's one backoff helper (`edged.runtime.backoff.Backoff`), injected."""
    return Devices(
        scanner=build_scanner(scanner, backoff),
        camera=build_camera(camera),
        printer=build_printer(printer, data_dir),
        display=build_display(display),
        release=None if release is None else build_release(release),
    )
