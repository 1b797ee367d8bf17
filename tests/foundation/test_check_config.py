"""`edged check-config` accepts every shipped example and explains broken files by key path."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edged.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "config").glob("*.toml"))


def check_config(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edged", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


def board_files(folder: Path) -> dict[str, str]:
    """The examples name /etc/edged TLS files: real ones here, set as an installer would."""
    from tests.link.test_tls_acl import make_ca

    make_ca(folder, "ca").issue("device", "kiosk-03")
    return {
        "EDGED_BROKER__TLS__CA_FILE": str(folder / "ca.pem"),
        "EDGED_BROKER__TLS__CERT_FILE": str(folder / "device.pem"),
        "EDGED_BROKER__TLS__KEY_FILE": str(folder / "device.key"),
    }


def test_the_repository_ships_the_three_documented_examples() -> None:
    assert {p.name for p in SHIPPED} >= {"kiosk.toml", "vending.toml", "development.toml"}


@pytest.mark.parametrize("example", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_example_passes(example: Path, tmp_path: Path) -> None:
    tls = "[broker.tls]" in example.read_text(encoding="utf-8")
    result = check_config(example, board_files(tmp_path) if tls else None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{example}: ok")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('[printer]\ndriver = "network"\nhost = "10.0.0.5"\nport = "nine"\n', "printer.port: "),
        ("[device]\nsite = 42\n", "device.site: "),
        ('[scanner]\ndriver = "sim"\ncolour = "red"\n', "scanner.colour: unknown key"),
        ("[paper]\nwidth = 80\n", "paper: unknown key"),
        ('[printer]\ndriver = "usb"\nvendor_id = "0x0416"\n', "printer.product_id: required key"),
        ('[display]\ndriver = "serial"\n', "display.port: required key is missing"),
        ("[device\nsite = 'x'\n", "invalid TOML"),
        ('[security]\ntrusted_keys = ["not base64!"]\n', "security.trusted_keys[0]: "),
        (
            '[broker]\nmode = "external"\nallow_plain_tcp = false\n',
            "broker: allow_plain_tcp is false",
        ),
    ],
    ids=[
        "wrong-type-int",
        "wrong-type-str",
        "unknown-nested-key",
        "unknown-section",
        "missing-required-key",
        "missing-required-serial-port",
        "invalid-toml",
        "bad-key-encoding",
        "tls-required",
    ],
)
def test_broken_files_are_rejected_with_path_qualified_messages(
    tmp_path: Path, content: str, expected: str
) -> None:
    broken = tmp_path / "kiosk.toml"
    broken.write_text(content, encoding="utf-8")

    result = check_config(broken)

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines, "a rejection must say why"
    assert all(line.startswith("kiosk.toml: ") for line in lines), lines
    assert any(expected in line for line in lines), lines


def test_a_missing_file_is_reported_not_a_traceback(tmp_path: Path) -> None:
    result = check_config(tmp_path / "absent.toml")
    assert result.returncode == 2
    assert "absent.toml: file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_environment_overrides_set_secrets_and_paths(tmp_path: Path) -> None:
    file = tmp_path / "k.toml"
    file.write_text('[broker]\nmode = "external"\nhost = "broker.lan"\n', encoding="utf-8")

    config = load_config(
        file,
        {
            "EDGED_BROKER__PASSWORD": "s3cret",
            "EDGED_PATHS__DATA_DIR": "/srv/edged",
            "EDGED_BROKER__PORT": "8884",
            "UNRELATED": "x",
        },
    )

    assert config.broker.password is not None
    assert config.broker.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config)
    assert str(config.paths.data_dir) == "/srv/edged"
    assert config.broker.port == 8884
    assert config.broker.host == "broker.lan"


def test_a_bad_environment_override_names_the_key_and_the_variable() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, {"EDGED_LINK__INFLIGHT_WINDOW": "many"})
    assert err.value.problems[0].startswith(
        "environment EDGED_LINK__INFLIGHT_WINDOW: link.inflight_window: "
    )


def test_development_toml_is_exactly_what_runs_with_no_file() -> None:
    written_out = load_config(REPO / "config/development.toml", {})
    assert written_out == load_config(None, {})


def test_the_readme_scans_a_code_the_demo_catalog_has() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    catalog = (REPO / "edged/defaults/catalog.csv").read_text(encoding="utf-8")
    codes = re.findall(r"edged sim scan (\d{8,14})", readme)
    assert codes, "the README shows a scan"
    barcodes = {line.split(",")[0] for line in catalog.splitlines()[1:]}
    assert set(codes) <= barcodes


def test_no_file_means_the_development_default() -> None:
    config = load_config(None, {})
    assert config.broker.mode == "embedded"
    assert config.cloud.mode == "simulated"
    assert {config.scanner.driver, config.camera.driver, config.printer.driver} == {"sim"}
    assert config.display.driver == "sim"


@pytest.mark.parametrize("example", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_example_names_drivers_that_exist(example: Path, tmp_path: Path) -> None:
    from edged.runtime.backoff import Backoff
    from hal.factory import build_devices

    config = load_config(example, {})
    devices = build_devices(
        config.scanner, config.camera, config.printer, config.display, tmp_path, backoff=Backoff
    )
    statuses = [devices.scanner.status(), devices.printer.status(), devices.display.status()]
    assert [s.kind.value for s in statuses] == ["scanner", "printer", "display"]
    assert {s.driver for s in statuses} >= {config.scanner.driver}
