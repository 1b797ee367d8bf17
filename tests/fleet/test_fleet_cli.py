"""`edged fleet`: what an operator does with keys, layers and status, against a real Mosquitto."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edged.contract.bodies import ConfigState, ConfigStatus, ScopeVersions, dump_body
from edged.contract.envelope import decode_envelope, make_envelope
from edged.contract.signing import unb64, verify_envelope
from edged.fleetctl.messages import Scope
from tests.link.helpers import Observer
from tests.support.mosquitto import Mosquitto

LOCAL_ONLY = "only the local config file may set this"


def fleet(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edged", "fleet", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def operator_key(tmp_path: Path) -> tuple[Path, Ed25519PublicKey]:
    key_file = tmp_path / "keys" / "operator.pem"
    made = fleet("keygen", str(key_file), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    public = Ed25519PublicKey.from_public_bytes(unb64(made.stdout.strip()))
    return key_file, public


def test_keygen_writes_a_private_key_only_the_owner_reads_and_never_overwrites_it(
    tmp_path: Path, operator_key: tuple[Path, Ed25519PublicKey]
) -> None:
    key_file, _public = operator_key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    before = key_file.read_bytes()

    again = fleet("keygen", str(key_file), cwd=tmp_path)

    assert again.returncode == 1
    assert again.stderr == (
        f"edged fleet: {key_file}: exists already; not overwriting a signing key\n"
    )
    assert key_file.read_bytes() == before


def test_sign_makes_a_cfg_desired_envelope_for_the_scope_that_the_public_key_verifies(
    tmp_path: Path, operator_key: tuple[Path, Ed25519PublicKey]
) -> None:
    key_file, public = operator_key
    layer = tmp_path / "layer.toml"
    layer.write_text('[checkout]\ninactivity_timeout_s = 45\nshop_name = "新店"\n')

    signed = fleet(
        "sign",
        str(layer),
        "--scope",
        "site:s1",
        "--version",
        "7",
        "--key",
        str(key_file),
        cwd=tmp_path,
    )

    assert signed.returncode == 0, signed.stderr
    envelope = decode_envelope(signed.stdout.strip().encode())
    verify_envelope(envelope, [public])
    assert envelope.type == "cfg.desired"
    assert envelope.device == "s1/_site"
    assert envelope.exp is not None
    assert envelope.body == {
        "version": 7,
        "config": {"checkout": {"inactivity_timeout_s": 45, "shop_name": "新店"}},
        "grace_s": None,
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[device]\nid = "other"\n', f"fleet v3: device.id: {LOCAL_ONLY}"),
        ("[paths]\ndata_dir = '/tmp/x'\n", f"fleet v3: paths.data_dir: {LOCAL_ONLY}"),
        (
            "[checkout]\ninactivity_timeout_s = -1\n",
            "fleet v3: checkout.inactivity_timeout_s: Input should be greater than 0",
        ),
    ],
)
def test_sign_refuses_a_layer_the_device_would_reject_and_says_which_key(
    tmp_path: Path, operator_key: tuple[Path, Ed25519PublicKey], text: str, problem: str
) -> None:
    key_file, _public = operator_key
    layer = tmp_path / "layer.toml"
    layer.write_text(text)

    signed = fleet(
        "sign",
        str(layer),
        "--scope",
        "fleet",
        "--version",
        "3",
        "--key",
        str(key_file),
        cwd=tmp_path,
    )

    assert signed.returncode == 2
    assert signed.stdout == ""
    assert problem in signed.stderr.splitlines()[1].strip()


def test_push_publishes_the_signed_layer_retained_on_the_fleet_topic(
    tmp_path: Path, operator_key: tuple[Path, Ed25519PublicKey], mosquitto: Mosquitto
) -> None:
    key_file, public = operator_key
    layer = tmp_path / "layer.json"
    layer.write_text(json.dumps({"health": {"interval_s": 10}}))
    broker = ["--host", "127.0.0.1", "--port", str(mosquitto.port)]

    pushed = fleet(
        "push",
        str(layer),
        "--scope",
        "fleet",
        "--key",
        str(key_file),
        "--version",
        "2",
        *broker,
        cwd=tmp_path,
    )

    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout == "pushed fleet v2 to edge/v1/_fleet/cfg (retained)\n"
    late = Observer("127.0.0.1", mosquitto.port, ["edge/v1/_fleet/cfg"]).start()
    try:
        late.wait_for(lambda seen: len(seen) == 1)
        (message,) = late.snapshot()
    finally:
        late.stop()
    assert message.retain
    envelope = decode_envelope(message.payload)
    verify_envelope(envelope, [public])
    assert (envelope.type, envelope.device, envelope.body["version"]) == (
        "cfg.desired",
        "_fleet",
        2,
    )


def test_push_refuses_an_envelope_signed_for_another_scope(
    tmp_path: Path, operator_key: tuple[Path, Ed25519PublicKey], mosquitto: Mosquitto
) -> None:
    key_file, _public = operator_key
    layer = tmp_path / "layer.toml"
    layer.write_text("[health]\ninterval_s = 10\n")
    envelope_file = tmp_path / "site.json"
    signed = fleet(
        "sign",
        str(layer),
        "--scope",
        "site:s1",
        "--version",
        "1",
        "--key",
        str(key_file),
        "--out",
        str(envelope_file),
        cwd=tmp_path,
    )
    assert signed.returncode == 0, signed.stderr

    pushed = fleet(
        "push",
        str(envelope_file),
        "--scope",
        "site:s2",
        "--port",
        str(mosquitto.port),
        cwd=tmp_path,
    )

    assert pushed.returncode == 2
    assert pushed.stderr == (
        f"edged fleet: {envelope_file}: signed for 's1/_site', not for site:s2 ('s2/_site'): "
        "sign it for this scope\n"
    )


def test_status_has_one_row_per_device_from_retained_state_and_config(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    now = datetime.now(UTC)
    online = make_envelope(
        type="state.online",
        device="k1",
        seq=1,
        now=now,
        clock_synced=True,
        body={
            "online": True,
            "boot_id": "b",
            "version": "0.1.0",
            "config_version": 0,
            "capabilities": [],
        },
    )
    offline = make_envelope(
        type="state.offline",
        device="k2",
        seq=2,
        now=now,
        clock_synced=True,
        body={
            "online": False,
            "boot_id": "b",
            "version": "0.0.9",
            "config_version": 0,
            "capabilities": [],
        },
    )
    state = ConfigState(
        desired=ScopeVersions(fleet=3, site=1),
        applied=ScopeVersions(fleet=2, site=1),
        status=ConfigStatus.ROLLED_BACK,
        scope=None,
        effective_hash="a" * 64,
    )
    cfg = make_envelope(
        type="cfg.state", device="k1", seq=3, now=now, clock_synced=True, body=dump_body(state)
    )
    publisher = Observer("127.0.0.1", mosquitto.port, ["unused/#"]).start()
    try:
        publisher.publish("edge/v1/s1/k1/state", online.to_bytes(), retain=True)
        publisher.publish("edge/v1/s1/k2/state", offline.to_bytes(), retain=True)
        publisher.publish("edge/v1/s1/k1/evt/cfg", cfg.to_bytes(), retain=True)
    finally:
        publisher.stop()

    shown = fleet("status", "--port", str(mosquitto.port), cwd=tmp_path)

    assert shown.returncode == 0, shown.stderr
    lines = [line.split() for line in shown.stdout.splitlines()]
    assert lines[0] == [
        "device",
        "link",
        "version",
        "desired",
        "f/s/d",
        "applied",
        "f/s/d",
        "config",
        "seen",
    ]
    assert lines[1][:6] == ["s1/k1", "online", "0.1.0", "3/1/-", "2/1/-", "rolled_back"]
    assert lines[2][:6] == ["s1/k2", "offline", "0.0.9", "-", "-", "-"]
    assert len(lines) == 3


def test_scope_names_are_checked_before_anything_is_signed() -> None:
    assert Scope.parse("device:s1/k1").topic == "edge/v1/s1/k1/cfg"
    assert Scope.parse("site:s1").audience == "s1/_site"
    with pytest.raises(
        ValueError, match=r"scope 'site:': write fleet, site:SITE or device:SITE/DEVICE"
    ):
        Scope.parse("site:")
