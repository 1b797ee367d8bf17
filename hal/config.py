"""Device configuration: which driver each device kind uses, and that driver's options.

The daemon's config embeds these sections; the HAL factory turns them into drivers.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hal.camera.symbologies import check_symbologies


def _check_encoding(value: str) -> str:
    try:
        codecs.lookup(value)
    except LookupError:
        raise ValueError(f"unknown text encoding {value!r}") from None
    return value


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimScanner(Section):
    driver: Literal["sim"] = "sim"
    script_file: Path | None = None


class EvdevScanner(Section):
    driver: Literal["evdev"]
    device: str
    """A /dev/input/by-id path, a device name, or vendor:product in hex (`05e0:1200`)."""
    layout: Literal["us", "de", "fr"] = "us"
    prefix: str = ""
    suffix: str = ""
    grab: bool = True


class SerialScanner(Section):
    driver: Literal["serial"]
    port: str
    baudrate: int = Field(9600, gt=0)
    terminator: Literal["CR", "LF", "CRLF"] = "CR"
    prefix: str = ""
    encoding: str = "utf-8"
    """How the scanner encodes non-ASCII codes (some Chinese scanners send GB18030)."""

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        return _check_encoding(value)


ScannerConfig = Annotated[SimScanner | EvdevScanner | SerialScanner, Field(discriminator="driver")]


class CameraDecoding(Section):
    decoder: Literal["zxing", "pyzbar"] = "zxing"
    """zxing measured ~30x faster than pyzbar here (`edged bench decode`)."""
    symbologies: list[str] = Field(default_factory=lambda: ["qrcode"])
    debounce_s: float = Field(2.0, ge=0, le=60)
    """A code stays in view for seconds: report it again only after this long out of view."""

    @field_validator("symbologies")
    @classmethod
    def _known_symbologies(cls, value: list[str]) -> list[str]:
        return check_symbologies(value)


class SimCamera(CameraDecoding):
    driver: Literal["sim"] = "sim"
    image_dir: Path | None = None
    """Image files dropped here are decoded like camera frames, each once, in name order."""
    poll_s: float = Field(0.5, gt=0, le=60)


class PiCamera(CameraDecoding):
    driver: Literal["picamera2"]
    width: int = Field(640, ge=160)
    height: int = Field(480, ge=120)
    max_fps: float = Field(10, gt=0, le=60)


class V4l2Camera(CameraDecoding):
    driver: Literal["v4l2"]
    device: str = "/dev/video0"
    width: int = Field(640, ge=160)
    height: int = Field(480, ge=120)
    max_fps: float = Field(10, gt=0, le=60)


class NoCamera(Section):
    driver: Literal["none"]


CameraConfig = Annotated[
    SimCamera | PiCamera | V4l2Camera | NoCamera, Field(discriminator="driver")
]


class PrinterLayout(Section):
    paper_mm: Literal[58, 80] = 80
    encoding: Literal["gb18030"] = "gb18030"


class SimPrinter(PrinterLayout):
    driver: Literal["sim"] = "sim"
    output_dir: Path | None = None
    """Defaults to `<data_dir>/printer`."""


class EscposOptions(PrinterLayout):
    status_timeout_s: float = Field(1.0, gt=0, le=30)
    """How long a printer may take to answer a status query before it counts as offline."""
    job_timeout_s: float = Field(20.0, gt=0, le=300)
    """How long printing one receipt may take before the driver asks the printer why not."""
    confirm_jobs: bool = True
    """Wait for the printer to report a receipt printed (GS r). Turn off only for printers
    that cannot answer it: paper running out mid-receipt then goes unnoticed."""


class UsbPrinter(EscposOptions):
    driver: Literal["usb"]
    vendor_id: int = Field(ge=0, le=0xFFFF)
    product_id: int = Field(ge=0, le=0xFFFF)

    @field_validator("vendor_id", "product_id", mode="before")
    @classmethod
    def _hex(cls, value: object) -> object:
        return int(value, 16) if isinstance(value, str) else value


class SerialPrinter(EscposOptions):
    driver: Literal["serial"]
    port: str
    baudrate: int = Field(19200, gt=0)


class NetworkPrinter(EscposOptions):
    driver: Literal["network"]
    host: str
    port: int = Field(9100, ge=1, le=65535)
    timeout_s: float = Field(3, gt=0)


PrinterConfig = Annotated[
    SimPrinter | UsbPrinter | SerialPrinter | NetworkPrinter, Field(discriminator="driver")
]


class SimDisplay(Section):
    driver: Literal["sim"] = "sim"
    echo: bool = False
    """Also print each view to the terminal."""


class SerialDisplay(Section):
    driver: Literal["serial"]
    port: str
    baudrate: int = Field(9600, gt=0)
    columns: int = Field(20, ge=8, le=40)
    rows: int = Field(2, ge=1, le=4)
    encoding: str = "ascii"
    """Character set of the display's font: most pole displays show ASCII only (other
    characters become "?"); Chinese models take "gb18030"."""

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        return _check_encoding(value)


DisplayConfig = Annotated[SimDisplay | SerialDisplay, Field(discriminator="driver")]


# -- release: the lock of a vending door, or the slots of a cabinet ------------------------

GpioLine = Annotated[int, Field(ge=0, le=1023)]


class SimDoorSensor(Section):
    driver: Literal["sim"] = "sim"
    shopper: Literal["takes", "never_opens", "leaves_open", "manual"] = "takes"
    """What the simulated shopper does when a lock opens; `manual` waits for
    `edged sim door open|close`, which works in every mode."""
    open_after_s: float = Field(0.5, ge=0, le=600)
    close_after_s: float = Field(2.0, ge=0, le=3600)


class GpioDoorSensor(Section):
    driver: Literal["gpio"]
    chip: str = "/dev/gpiochip0"
    lines: list[GpioLine] = Field(min_length=1, max_length=64)
    """The door switch line of slot 1, 2, ..."""
    active_low: bool = False
    """The switch reads active when the door is open; set this when it pulls low when open."""
    bias: Literal["pull_up", "pull_down", "disabled", "as_is"] = "pull_up"
    debounce_ms: int = Field(20, ge=0, le=1000)


class NoDoorSensor(Section):
    driver: Literal["none"] = "none"


DoorSensorConfig = Annotated[
    SimDoorSensor | GpioDoorSensor | NoDoorSensor, Field(discriminator="driver")
]


def _check_sensor(sensor: SimDoorSensor | GpioDoorSensor | NoDoorSensor, slots: int) -> None:
    if isinstance(sensor, GpioDoorSensor) and len(sensor.lines) != slots:
        raise ValueError(f"sensor.lines names {len(sensor.lines)} door switches for {slots} slots")


class SimRelease(Section):
    driver: Literal["sim"] = "sim"
    slots: int = Field(1, ge=1, le=64)
    sensor: DoorSensorConfig = SimDoorSensor()

    @model_validator(mode="after")
    def _sensor_per_slot(self) -> SimRelease:
        _check_sensor(self.sensor, self.slots)
        return self


class SerialRelease(Section):
    driver: Literal["serial"]
    port: str
    """Ideally the udev name /dev/edged-relay (systemd/99-edged.rules)."""
    baudrate: int = Field(9600, gt=0)
    channels: list[Annotated[int, Field(ge=1, le=255)]] = Field([1], min_length=1, max_length=64)
    """The relay channel of slot 1, 2, ... (one door: `[1]`)."""
    sensor: DoorSensorConfig = NoDoorSensor()
    """USB relay boards have no inputs: door switches go on GPIO lines, or there are none."""

    @property
    def slots(self) -> int:
        return len(self.channels)

    @model_validator(mode="after")
    def _sensor_per_slot(self) -> SerialRelease:
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("channels: a relay channel appears twice")
        _check_sensor(self.sensor, self.slots)
        return self


class GpioRelease(Section):
    driver: Literal["gpio"]
    chip: str = "/dev/gpiochip0"
    relay_lines: list[GpioLine] = Field(min_length=1, max_length=64)
    """The relay line of slot 1, 2, ..."""
    relay_active_low: bool = False
    """Most relay modules for the Pi switch on a low input: set this for those."""
    sensor: DoorSensorConfig = NoDoorSensor()

    @property
    def slots(self) -> int:
        return len(self.relay_lines)

    @model_validator(mode="after")
    def _sensor_per_slot(self) -> GpioRelease:
        if len(set(self.relay_lines)) != len(self.relay_lines):
            raise ValueError("relay_lines: a line appears twice")
        _check_sensor(self.sensor, self.slots)
        if (
            isinstance(self.sensor, GpioDoorSensor)
            and self.sensor.chip == self.chip
            and set(self.sensor.lines) & set(self.relay_lines)
        ):
            raise ValueError("sensor.lines and relay_lines share a line")
        return self


class NoRelease(Section):
    driver: Literal["none"] = "none"


ReleaseConfig = Annotated[
    SimRelease | SerialRelease | GpioRelease | NoRelease, Field(discriminator="driver")
]
