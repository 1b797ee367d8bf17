"""`edged doctor` as a technician runs it: every expected device, its verdict, and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def doctor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edged", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_a_kiosk_without_its_hardware_lists_each_missing_device_with_a_fix() -> None:
    result = doctor("--config", "config/kiosk.toml")

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    verdicts = {line.split()[0]: line.split()[-1] for line in lines if not line.startswith(" ")}
    assert verdicts == {
        "scanner": "MISSING",
        "camera": "MISSING",
        "printer": "MISSING",
        "display": "MISSING",
    }
    assert "/dev/edged-scanner does not exist" in result.stdout
    assert "99-edged.rules" in result.stdout
    assert sum(line.strip().startswith("fix:") for line in lines) >= 4


def test_the_development_default_has_every_device() -> None:
    result = doctor()
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split()[-1] for line in result.stdout.splitlines()] == ["ok"] * 4


def test_a_broken_config_is_reported_not_diagnosed(tmp_path: Path) -> None:
    broken = tmp_path / "k.toml"
    broken.write_text("[scanner]\ndriver = 'evdev'\n", encoding="utf-8")
    result = doctor("--config", str(broken))
    assert result.returncode == 2
    assert "k.toml: scanner.device: required key is missing" in result.stderr
