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


def needs(config: DaemonConfig) -> Needs:
    extras: list[str] = []
    apt: list[str] = []

    def add(extra: str | None, *packages: str) -> None:
        if extra and extra not in extras:
            extras.append(extra)
        apt.extend(p for p in packages if p not in apt)

    if config.scanner.driver == "evdev":
        add("hid", "python3-evdev")
    camera = config.camera
    if camera.driver == "picamera2":
        add("camera", "python3-picamera2", "python3-numpy")
    elif camera.driver == "v4l2":
        add("camera", "python3-opencv", "python3-numpy")
    elif camera.driver == "sim" and camera.image_dir is not None:
        add("camera", "python3-numpy")
    if camera.driver != "none" and getattr(camera, "decoder", "zxing") == "pyzbar":
        add("pyzbar", "libzbar0")
    if config.printer.driver == "usb":
        add("usb", "python3-usb", "libusb-1.0-0")
    if config.broker.mode == "embedded" and config.broker.embedded_server != "amqtt":
        add(None, "mosquitto")
    elif config.broker.mode == "embedded":
        add("demo")
    return Needs(extras, apt)
