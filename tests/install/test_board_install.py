"""firmware-tools/install.sh brings config/kiosk.toml up in a real Debian Bookworm root:
apt packages for its drivers, a venv that sees the system's picamera2 and numpy, every extra
installed, keys 0600, the unit and rules installed; then check-config and doctor run inside.
Only the Raspberry Pi archive (picamera2, libcamera), systemctl and udevadm are stubbed."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from pathlib import Path

from edged.config import load_config
from edged.config.extras import needs
from tests.link.test_tls_acl import make_ca
from tests.support.bookworm import Chroot, bookworm_chroot

REPO = Path(__file__).resolve().parents[2]
VENV = "/opt/edged/venv"


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    """The host's systemd-analyze on the installed root (the same systemd 252 as Bookworm)."""
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, timeout=120)


def prepare_board(chroot: Chroot) -> None:
    """What a technician brings: the kiosk config and its broker certificates in /etc/edged,
    the key still world-readable, as copied from a USB stick."""
    etc = chroot.path / "etc/edged"
    make_ca(etc, "ca").issue("device", "kiosk-03")
    (etc / "device.key").chmod(0o644)
    (etc / "ca.pem").chmod(0o644)
    (etc / "device.pem").chmod(0o644)
    (chroot.path / "root/kiosk.toml").write_bytes((REPO / "config/kiosk.toml").read_bytes())


def test_the_installer_brings_the_kiosk_config_up_on_bookworm(tmp_path: Path) -> None:
    started = time.monotonic()
    with bookworm_chroot(tmp_path, REPO) as chroot:
        prepare_board(chroot)

        install = chroot.run("bash", "/opt/edged-src/firmware-tools/install.sh", "/root/kiosk.toml")
        (tmp_path / "install.log").write_text(install.stdout + install.stderr)
        assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

        for step in (
            "==> apt-get update",
            "==> apt packages for the configured drivers: python3-evdev python3-picamera2 "
            "python3-numpy python3-usb libusb-1.0-0",
            "==> pip install edged[hid,camera,usb,screen]",
            "==> edged check-config as the service user",
        ):
            assert step in install.stdout, install.stdout
        where = chroot.run(
            f"{VENV}/bin/python", "-c",
            "import numpy, picamera2, evdev, usb, zxingcpp; "
            "print(numpy.__file__); print(picamera2.__file__); print(evdev.__file__)",
        )  # fmt: skip
        assert where.returncode == 0, where.stderr
        numpy_file, picamera_file, evdev_file = where.stdout.split()
        assert numpy_file.startswith("/usr/lib/python3/dist-packages/numpy/")
        assert picamera_file.startswith("/usr/lib/python3/dist-packages/picamera2/")
        assert evdev_file.startswith("/usr/lib/python3/dist-packages/evdev/")  # no compiler
        site = chroot.path / VENV.lstrip("/") / "lib/python3.11/site-packages"
        assert not (site / "numpy").exists(), "pip installed a second numpy beside apt's"
        assert not (site / "amqtt").exists(), "a production install carries no broker"

        key = (chroot.path / "etc/edged/device.key").stat()
        assert stat.S_IMODE(key.st_mode) == 0o600
        owner = chroot.run("stat", "-c", "%U", "/etc/edged/device.key").stdout.strip()
        assert owner == "edged"
        assert (chroot.path / "etc/systemd/system/edged.service").is_file()
        assert (chroot.path / "etc/udev/rules.d/99-edged.rules").is_file()
        assert "systemctl enable --now edged.service" in chroot.stub_calls()
        assert "udevadm trigger" in chroot.stub_calls()
        dropin = chroot.path / "etc/systemd/system/edged.service.d/devices.conf"
        expected = needs(load_config(REPO / "config/kiosk.toml", {})).unit_dropin()
        assert dropin.read_text(encoding="utf-8") == expected
        groups = chroot.run("id", "-nG", "edged").stdout.split()
        assert set(groups) >= {"edged", "dialout", "input", "video", "lp"}, groups

        verify = analyze("verify", f"--root={chroot.path}", "edged.service")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        security = analyze("security", "--offline=true", f"--root={chroot.path}", "edged.service")
        score = re.search(r"Overall exposure level for edged\.service: (\d+\.\d+)", security.stdout)
        assert score, security.stdout + security.stderr
        print(f"installed unit: exposure {score.group(1)}")
        assert float(score.group(1)) <= 2.0

        check = chroot.run("edged", "check-config", "--user", "edged", "/etc/edged/edged.toml")
        assert check.returncode == 0, check.stderr
        assert check.stdout == "/etc/edged/edged.toml: ok (kiosk sh-jingan-012/kiosk-03)\n"

        doctor = chroot.run("edged", "doctor", "--config", "/etc/edged/edged.toml")
        assert doctor.returncode == 1, doctor.stdout + doctor.stderr  # no devices in a chroot
        lines = doctor.stdout.splitlines()
        assert lines[0].split()[:2] == ["scanner", "evdev"]
        camera = next(line for line in lines if line.startswith("camera"))
        assert camera.split()[-1] == "MISSING"
        assert "    problem: no /dev/media* node: no camera detected by libcamera" in lines
        assert not any("is not installed" in line for line in lines), doctor.stdout

        broken = chroot.path / "root/broken.toml"
        broken.write_text('[printer]\ndriver = "usbb"\n', encoding="utf-8")
        again = chroot.run("bash", "/opt/edged-src/firmware-tools/install.sh", "/root/broken.toml")
        assert again.returncode == 22, again.stdout + again.stderr
        assert "broken.toml: printer.driver: 'usbb' is not a driver" in again.stderr
        assert "install.sh: failed: read the drivers of /root/broken.toml" in again.stderr
    print(f"installer test: {time.monotonic() - started:.0f} s")


def test_the_installer_refuses_a_missing_config_before_changing_anything(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(REPO / "firmware-tools/install.sh"), str(tmp_path / "absent.toml")],
        capture_output=True, text=True, timeout=30, env={**os.environ, "PATH": os.environ["PATH"]},
    )  # fmt: skip
    assert result.returncode == 3
    assert (
        result.stderr
        == f"install.sh: config file not found or unreadable: {tmp_path}/absent.toml\n"
    )
    assert result.stdout == ""
