"""A config that cannot work is refused by `edged check-config` with a message a technician
can act on, and `edged run` with it exits 2 before it ever says READY."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.link.test_tls_acl import Pki, _key_pem, make_ca

Case = Callable[[Path], tuple[str, dict[str, str]]]
"""Builds a broken config in a folder: (TOML text, extra environment)."""


def tls_section(ca: str, cert: str, key: str) -> str:
    return (
        '[broker]\nmode = "external"\nhost = "127.0.0.1"\nport = 8883\nallow_plain_tcp = false\n'
        f'[broker.tls]\nca_file = "{ca}"\ncert_file = "{cert}"\nkey_file = "{key}"\n'
        '[cloud]\nmode = "remote"\n'
    )


def pki(folder: Path) -> Pki:
    authority = make_ca(folder, "ca")
    authority.issue("device", "k1")
    return authority


def missing_ca(folder: Path) -> tuple[str, dict[str, str]]:
    pki(folder)
    return tls_section(
        f"{folder}/absent-ca.pem", f"{folder}/device.pem", f"{folder}/device.key"
    ), {}


def garbage_cert(folder: Path) -> tuple[str, dict[str, str]]:
    pki(folder)
    (folder / "garbage.pem").write_text("-----BEGIN CERTIFICATE-----\nnope\n")
    return tls_section(f"{folder}/ca.pem", f"{folder}/garbage.pem", f"{folder}/device.key"), {}


def key_of_another_cert(folder: Path) -> tuple[str, dict[str, str]]:
    pki(folder)
    other = folder / "other.key"
    other.write_bytes(_key_pem(ec.generate_private_key(ec.SECP256R1())))
    other.chmod(0o600)
    return tls_section(f"{folder}/ca.pem", f"{folder}/device.pem", str(other)), {}


def world_readable_key(folder: Path) -> tuple[str, dict[str, str]]:
    pki(folder)
    (folder / "device.key").chmod(0o644)
    return tls_section(f"{folder}/ca.pem", f"{folder}/device.pem", f"{folder}/device.key"), {}


def text(content: str, env: dict[str, str] | None = None) -> Case:
    return lambda _folder: (content, env or {})


BROKEN: dict[str, tuple[Case, str]] = {
    "missing-tls-file": (missing_ca, "broker.tls.ca_file: {dir}/absent-ca.pem does not exist"),
    "certificate-does-not-parse": (
        garbage_cert,
        "broker.tls.cert_file: {dir}/garbage.pem is not a PEM certificate",
    ),
    "key-does-not-match-certificate": (
        key_of_another_cert,
        "broker.tls.key_file: {dir}/other.key does not match the certificate in {dir}/device.pem",
    ),
    "key-readable-by-others": (
        world_readable_key,
        "broker.tls.key_file: {dir}/device.key is readable by others (mode 0644)",
    ),
    "embedded-broker-with-tls": (
        text('[broker]\nmode = "embedded"\n[broker.tls]\nca_file = "/etc/ssl/ca.pem"\n'),
        "broker: tls: the embedded broker listens on loopback without TLS",
    ),
    "reconnect-min-above-max": (
        text("[link]\nreconnect_min_s = 90\nreconnect_max_s = 60\n"),
        "link: reconnect_min_s (90) is greater than reconnect_max_s (60)",
    ),
    "shed-above-stop": (
        text("[store]\nshed_telemetry_at_pct = 97\nstop_sales_at_pct = 95\n"),
        "store: shed_telemetry_at_pct (97) is above stop_sales_at_pct (95)",
    ),
    "mqtt5-on-the-embedded-broker": (
        text('[broker]\nmode = "embedded"\nembedded_server = "amqtt"\nprotocol = "mqtt5"\n'),
        'broker: protocol: "mqtt5" cannot work with embedded_server = "amqtt"',
    ),
    "section-without-driver": (
        text('[printer]\nhost = "10.0.0.5"\n'),
        "printer.driver: required key is missing; choose one of 'sim', 'usb', 'serial', 'network'",
    ),
    "unknown-driver": (
        text('[printer]\ndriver = "usbb"\n'),
        "printer.driver: 'usbb' is not a driver; choose one of 'sim', 'usb', 'serial', "
        "'network'; did you mean 'usb'?",
    ),
    "misspelt-key-of-a-driver": (
        text('[printer]\ndriver = "usb"\nvendr_id = "0x0416"\nproduct_id = "0x5011"\n'),
        "printer.vendr_id: unknown key; did you mean 'vendor_id'?",
    ),
    "misspelt-section": (
        text('[scaner]\ndriver = "sim"\n'),
        "scaner: unknown key; did you mean 'scanner'?",
    ),
    "misspelt-choice": (
        text('[broker]\nmode = "extrnal"\n'),
        "broker.mode: must be one of 'embedded', 'external'; did you mean 'external'?",
    ),
    "second-trusted-key-broken": (
        text('[security]\ntrusted_keys = ["trewHk3kkzNs/6FUi9e7OFUFdvwGPKo/066UeTJVTsA=", "x!"]\n'),
        "security.trusted_keys[1]: Ed25519 public key must be base64",
    ),
}


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edged", *args],
        capture_output=True, text=True, timeout=30, cwd=cwd, env={**os.environ, **env},
    )  # fmt: skip


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_check_config_refuses_it_naming_the_key(tmp_path: Path, case: str) -> None:
    build, expected = BROKEN[case]
    content, env = build(tmp_path)
    (tmp_path / "kiosk.toml").write_text(content, encoding="utf-8")

    result = run(["check-config", str(tmp_path / "kiosk.toml")], tmp_path, env)

    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert f"kiosk.toml: {expected.format(dir=tmp_path)}" in [
        line[: len(f"kiosk.toml: {expected.format(dir=tmp_path)}")] for line in lines
    ], lines
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_edged_run_exits_2_before_ready(tmp_path: Path, case: str) -> None:
    build, expected = BROKEN[case]
    content, env = build(tmp_path)
    config = tmp_path / "kiosk.toml"
    config.write_text(content, encoding="utf-8")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.setblocking(False)
    try:
        result = run(
            ["run", "--config", str(config)], tmp_path,
            {**env, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")},
        )  # fmt: skip
        with pytest.raises(BlockingIOError):
            notify.recv(4096)  # nothing was said over $NOTIFY_SOCKET: no READY=1
    finally:
        notify.close()
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected.format(dir=tmp_path) in result.stderr


def test_a_bad_environment_override_is_blamed_on_the_variable_not_the_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "kiosk.toml").write_text('[broker]\nmode = "external"\n', encoding="utf-8")

    result = run(
        ["check-config", str(tmp_path / "kiosk.toml")], tmp_path, {"EDGED_BROKER__PORT": "abc"}
    )

    assert result.returncode == 2
    assert result.stderr.startswith(
        "environment EDGED_BROKER__PORT: broker.port: Input should be a valid integer"
    ), result.stderr
    assert "kiosk.toml" not in result.stderr


def test_a_file_the_service_user_cannot_read_is_named(tmp_path: Path) -> None:
    pki(tmp_path)
    tmp_path.chmod(0o755)
    (tmp_path / "ca.pem").chmod(0o600)  # root's own, not the service user's
    config = tmp_path / "kiosk.toml"
    config.write_text(
        tls_section(f"{tmp_path}/ca.pem", f"{tmp_path}/device.pem", f"{tmp_path}/device.key"),
        encoding="utf-8",
    )

    as_root = run(["check-config", str(config), "--user", "root"], tmp_path, {})
    as_nobody = run(["check-config", str(config), "--user", "nobody"], tmp_path, {})

    assert as_root.returncode == 0, as_root.stderr
    assert as_nobody.returncode == 2
    assert (
        f"kiosk.toml: broker.tls.ca_file: {tmp_path}/ca.pem is not readable by the service "
        "user 'nobody'" in as_nobody.stderr.splitlines()
    )


def test_a_complete_tls_config_passes(tmp_path: Path) -> None:
    pki(tmp_path)
    config = tmp_path / "kiosk.toml"
    config.write_text(
        tls_section(f"{tmp_path}/ca.pem", f"{tmp_path}/device.pem", f"{tmp_path}/device.key"),
        encoding="utf-8",
    )

    result = run(["check-config", str(config)], tmp_path, {})

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{config}: ok (kiosk dev-site/dev-kiosk)\n"


def test_a_simulated_cloud_on_an_external_broker_is_allowed_and_explained(
    tmp_path: Path,
) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text(
        '[broker]\nmode = "external"\nport = 1883\n[cloud]\nmode = "simulated"\n',
        encoding="utf-8",
    )

    result = run(["check-config", str(config)], tmp_path, {})

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f'{config}: note: cloud.mode = "simulated" with an external broker: this daemon runs '
        "no simulated backend; it expects `edged cloudsim` (or a real backend) on "
        "127.0.0.1:1883; without one a payment gets no answer and is reversed after "
        "payments.deadline_s (40 s), and no goods are released",
        f"{config}: ok (kiosk dev-site/dev-kiosk)",
    ]
