"""What a config's drivers need installed: pip extras of edged and Debian packages.

The installer asks this (`edged extras FILE`, `edged extras --apt FILE`) instead of keeping
its own copy of the mapping, so a driver added here is installed everywhere it is used.
On Raspberry Pi OS, picamera2 and libcamera exist only as apt packages; evdev, numpy and
pyusb come from apt too, so the venv (made with --system-site-packages) needs no compiler
and holds no second numpy beside the one picamera2 uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edged.config.models import DaemonConfig


@dataclass(frozen=True)
class Needs:
    extras: list[str] = field(default_factory=list)
    """`edged[...]` extras, in a stable order."""
    apt: list[str] = field(default_factory=list)
    """Debian packages, in a stable order."""
    devices: list[str] = field(default_factory=list)
    """systemd `DeviceAllow=` values: the device classes the drivers open, nothing more."""
    groups: list[str] = field(default_factory=list)
    """The groups that own those device nodes on Debian and Raspberry Pi OS."""

    def unit_dropin(self) -> str:
        """A drop-in for edged.service granting exactly these devices and groups."""
        lines = ["# written by firmware-tools/install.sh from the config's drivers", "[Service]"]
        if self.groups:
            lines.append(f"SupplementaryGroups={' '.join(self.groups)}")
        lines += [f"DeviceAllow={device}" for device in self.devices]
        return "\n".join(lines) + "\n"


def needs(config: DaemonConfig) -> Needs:
    extras: list[str] = []
    apt: list[str] = []
    devices: list[str] = []
    groups: list[str] = []

    def add(extra: str | None, *packages: str) -> None:
        if extra and extra not in extras:
            extras.append(extra)
        apt.extend(p for p in packages if p not in apt)

    def grant(group: str, *classes: str) -> None:
        if group not in groups:
            groups.append(group)
        devices.extend(c for c in classes if c not in devices)

    for section in (config.scanner, config.printer, config.display, config.release):
        port = getattr(section, "port", None)
        if section.driver == "serial" and isinstance(port, str):
            grant("dialout", *_serial_classes(port))

    if config.scanner.driver == "evdev":
        add("hid", "python3-evdev")
        grant("input", "char-input rw")
    camera = config.camera
    if camera.driver == "picamera2":
        add("camera", "python3-picamera2", "python3-numpy")
        grant("video", "char-media rw", "char-video4linux rw", "char-dma_heap rw")
    elif camera.driver == "v4l2":
        add("camera", "python3-opencv", "python3-numpy")
        grant("video", "char-video4linux rw")
    elif camera.driver == "sim" and camera.image_dir is not None:
        add("camera", "python3-numpy")
    if camera.driver != "none" and getattr(camera, "decoder", "zxing") == "pyzbar":
        add("pyzbar", "libzbar0")
    if config.printer.driver == "usb":
        add("usb", "python3-usb", "libusb-1.0-0")
        grant("lp", "char-usb_device rw")
    if config.screen.enabled:
        add("screen")
    release = config.release
    chips = [
        getattr(release, "chip", None),
        getattr(getattr(release, "sensor", None), "chip", None),
    ]
    if any(isinstance(chip, str) for chip in chips):
        add("gpio")
        grant("gpio", "char-gpiochip rw")
    if config.broker.mode == "embedded" and config.broker.embedded_server != "amqtt":
        add(None, "mosquitto")
    elif config.broker.mode == "embedded":
        add("demo")
    return Needs(extras, apt, devices, groups)


def _serial_classes(port: str) -> list[str]:
    """The kernel's name for a serial port's device class; a udev symlink such as
    /dev/edged-display points at a USB adapter (ttyUSB) or a CDC-ACM device (ttyACM)."""
    name = port.removeprefix("/dev/")
    for prefix in ("ttyUSB", "ttyACM", "ttyAMA", "ttyS"):
        if name.startswith(prefix):
            return [f"char-{prefix} rw"]
    return ["char-ttyUSB rw", "char-ttyACM rw"]
