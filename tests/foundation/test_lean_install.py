"""A production install carries what its drivers need and nothing of the development default:
no broker, no numpy without a camera; the installer derives extras and apt packages from the
config through `edged extras`."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from edged.config import load_config, usability_problems
from edged.config.extras import needs

REPO = Path(__file__).resolve().parents[2]


def edged(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edged", *args], capture_output=True, text=True, timeout=30
    )


def test_the_core_install_has_no_broker_and_no_numpy() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"]).lower()
    assert "amqtt" not in core and "numpy" not in core and "zxing" not in core
    extras = project["optional-dependencies"]
    assert any(d.startswith("amqtt") for d in extras["demo"])
    assert any(d.startswith("numpy") for d in extras["camera"])
    assert 'EXTRAS="${EXTRAS:-demo}"' in (REPO / "scripts/demo.sh").read_text()


def test_numpy_floors_accept_the_numpy_bookworm_ships() -> None:
    """picamera2 from apt uses Debian's numpy 1.24.2; a floor above it would make pip put a
    second, 70 MB numpy into the venv."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    floors = [d for deps in project["optional-dependencies"].values() for d in deps if "numpy" in d]
    assert floors and all(d == "numpy>=1.24" for d in floors), floors


@pytest.mark.parametrize(
    ("example", "extras", "apt"),
    [
        (
            "kiosk.toml",
            "hid,camera,usb,screen",
            ["python3-evdev", "python3-picamera2", "python3-numpy", "python3-usb", "libusb-1.0-0"],
        ),
        ("vending.toml", "gpio", []),  # gpiod 2 has aarch64 wheels; Bookworm's is 1.6
        ("development.toml", "", ["mosquitto"]),
    ],
)
def test_edged_extras_names_what_the_drivers_need(
    example: str, extras: str, apt: list[str]
) -> None:
    pip_result = edged("extras", str(REPO / "config" / example))
    apt_result = edged("extras", "--apt", str(REPO / "config" / example))
    assert pip_result.returncode == 0, pip_result.stderr
    assert pip_result.stdout == extras + "\n"
    assert apt_result.stdout.splitlines() == apt


def test_a_pyzbar_camera_needs_libzbar_and_the_amqtt_fallback_the_demo_extra(
    tmp_path: Path,
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[broker]\nembedded_server = "amqtt"\n[camera]\ndriver = "v4l2"\ndecoder = "pyzbar"\n',
        encoding="utf-8",
    )
    found = needs(load_config(config, {}))
    assert found.extras == ["camera", "pyzbar", "demo"]
    assert found.apt == ["python3-opencv", "python3-numpy", "libzbar0"]


def test_an_embedded_broker_with_no_broker_installed_is_refused_before_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("edged.runtime.dev_broker.mosquitto_binary", lambda: None)
    monkeypatch.setattr("edged.runtime.dev_broker.amqtt_installed", lambda: False)
    problems = usability_problems(load_config(None, {}))
    assert [p.render("<defaults>") for p in problems] == [
        '<defaults>: broker.mode: "embedded" needs a development broker, but neither '
        "Mosquitto (apt install mosquitto) nor amqtt (pip install 'edged[demo]') is installed"
    ]


def test_mqtt5_on_the_embedded_broker_needs_mosquitto(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(None, {"EDGED_BROKER__PROTOCOL": "mqtt5"})
    assert usability_problems(config) == []  # Mosquitto is installed here
    monkeypatch.setattr("edged.runtime.dev_broker.mosquitto_binary", lambda: None)
    [problem] = usability_problems(config)
    assert problem.key == "broker.protocol"
    assert "needs Mosquitto, which is not installed" in problem.message
