"""A plain install carries everything the daemon needs at run time and nothing hardware-only."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_wheel_ships_migrations_the_contract_and_the_console_command(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), REPO],
        check=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("edged-*.whl")
    names = zipfile.ZipFile(wheel).namelist()

    migrations = sorted(n for n in names if n.startswith("edged/store/migrations/"))
    on_disk = sorted((REPO / "edged/store/migrations").glob("*.sql"))
    assert [Path(n).name for n in migrations] == [p.name for p in on_disk]
    assert any(n.startswith("hal/") for n in names)
    assert "edged/py.typed" in names
    shipped = zipfile.ZipFile(wheel).read("edged/contract/asyncapi.json")
    assert shipped == (REPO / "edged/contract/asyncapi.json").read_bytes()
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "edged = edged.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    assert not any(n.startswith("tests/") for n in names)


def test_hardware_only_packages_are_optional_extras() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    required = " ".join(project["dependencies"]).lower()
    assert "evdev" not in required and "picamera2" not in required
    assert "evdev" in " ".join(project["optional-dependencies"]["hid"])
    assert "picamera2" in " ".join(project["optional-dependencies"]["picamera"])


def test_the_daemon_imports_without_hardware_packages() -> None:
    code = (
        "import sys\n"
        "sys.modules['evdev'] = None\n"
        "sys.modules['picamera2'] = None\n"
        "import edged.cli, edged.app.daemon, hal.factory\n"
        "from edged.config import load_config\n"
        "from edged.runtime.backoff import Backoff\n"
        "c = load_config(None, {})\n"
        "d = hal.factory.build_devices(c.scanner, c.camera, c.printer, c.display, "
        "__import__('pathlib').Path(sys.argv[1]), backoff=Backoff)\n"
        "print(type(d.scanner).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "/tmp/edged-import-test"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "SimulatedScanner"
