"""The unit and the udev rules as shipped: a low systemd-analyze exposure with the devices
the kiosk config needs, rules that never take a node from its group, comments that name real
config sections, and a Documentation= that needs no network."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from edged.config import check_config_dict, load_config
from edged.config.extras import needs
from edged.config.models import DaemonConfig

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd/edged.service"
RULES = REPO / "systemd/99-edged.rules"


def installed_layout(root: Path, example: str) -> None:
    """The unit as the installer lays it out: the unit, its devices drop-in, the command."""
    system = root / "etc/systemd/system"
    (system / "edged.service.d").mkdir(parents=True)
    shutil.copy(UNIT, system / "edged.service")
    dropin = needs(load_config(REPO / "config" / example, {})).unit_dropin()
    (system / "edged.service.d/devices.conf").write_text(dropin, encoding="utf-8")
    command = root / "usr/local/bin/edged"
    command.parent.mkdir(parents=True)
    command.write_text("#!/bin/sh\n", encoding="utf-8")
    command.chmod(0o755)


def exposure(root: Path) -> float:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", f"--root={root}", "edged.service"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for edged\.service: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    return float(found.group(1))


def test_the_kiosk_unit_keeps_an_exposure_of_at_most_2(tmp_path: Path) -> None:
    installed_layout(tmp_path, "kiosk.toml")
    score = exposure(tmp_path)
    print(f"systemd-analyze security exposure (kiosk.toml): {score}")
    assert score <= 2.0


def test_the_kiosk_dropin_allows_exactly_its_drivers_device_classes() -> None:
    dropin = needs(load_config(REPO / "config/kiosk.toml", {})).unit_dropin()
    allowed = [line.removeprefix("DeviceAllow=") for line in dropin.splitlines()
               if line.startswith("DeviceAllow=")]  # fmt: skip
    assert allowed == [
        "char-ttyUSB rw",  # display on /dev/edged-display (a USB-serial adapter)
        "char-ttyACM rw",
        "char-input rw",  # evdev scanner
        "char-media rw",  # picamera2: libcamera's media controller,
        "char-video4linux rw",  # its video nodes
        "char-dma_heap rw",  # and its frame buffers
        "char-usb_device rw",  # USB printer through libusb
    ]
    assert "SupplementaryGroups=dialout input video lp" in dropin.splitlines()
    vending = needs(load_config(REPO / "config/vending.toml", {})).unit_dropin()
    assert "char-media" not in vending and "char-usb_device" not in vending


def test_the_unit_itself_allows_no_device_and_documents_without_a_url() -> None:
    text = UNIT.read_text(encoding="utf-8")
    assert "DevicePolicy=closed" in text.splitlines()
    assert not re.search(r"^DeviceAllow=", text, re.M)
    [documentation] = re.findall(r"^Documentation=(.*)$", text, re.M)
    assert all(uri.startswith(("man:", "file:")) for uri in documentation.split())


def test_udev_rules_never_take_a_node_from_its_group() -> None:
    rules = [line for line in RULES.read_text().splitlines() if line and not line.startswith("#")]
    assert rules
    for rule in rules:
        group = re.search(r'GROUP="([^"]+)"', rule)
        if group is None:
            continue
        # Only nodes that are root-only on plain Debian get a group, the one Raspberry Pi OS
        # gives them: raw USB printers (lp, everyone keeps read), DMA heaps, GPIO chips.
        if 'SUBSYSTEM=="usb"' in rule:
            assert group.group(1) == "lp" and 'MODE="0664"' in rule, rule
        elif rule.startswith('SUBSYSTEM=="gpio"'):
            assert group.group(1) == "gpio", rule
        else:
            assert rule.startswith('SUBSYSTEM=="dma_heap"') and group.group(1) == "video", rule
    assert 'GROUP="edged"' not in RULES.read_text()


def test_udev_comments_name_config_sections_and_keys_that_exist() -> None:
    named = re.findall(r"^#\s+\[(\w+)\]\s+driver = \"(\w+)\"(?:,\s+(\w+)\s*=)?", RULES.read_text(),
                       re.M)  # fmt: skip
    sections = {section for section, _, _ in named}
    assert sections == {"scanner", "printer", "display", "camera", "release"}
    for section, driver, key in named:
        assert section in DaemonConfig.model_fields, section
        raw: dict[str, object] = {"driver": driver}
        if key:
            raw[key] = "0x0416" if key.endswith("_id") else "/dev/x"
        _, problems = check_config_dict({section: raw})
        # Only keys the comment leaves out may be missing: no unknown key, no unknown driver.
        assert all(p.message == "required key is missing" for p in problems), problems
