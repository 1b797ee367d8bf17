"""The simulated backend's rules, without a broker: what the real backend would also do."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edged.cloudsim.backend import Backend, Outgoing
from edged.cloudsim.keys import KEY_FILE, ensure_keys, with_backend_keys
from edged.config.models import DaemonConfig
from edged.contract.bodies import MicropayRequest, PayMethod, QueryRequest, dump_body
from edged.contract.envelope import decode_envelope, make_envelope
from edged.contract.signing import unb64, verify_envelope
from edged.contract.topics import DeviceTopics, Uplink
from edged.services.payments.sealing import load_seal_public_key, seal_code

DEVICE = DeviceTopics("s1", "k1")
TRADE = "0190aabbccddeeff0011223344556677"


@pytest.fixture
def backend(tmp_path: Path) -> Backend:
    return Backend(ensure_keys(tmp_path / "keys"))


def uplink(type_: str, body: dict[str, object], msg_id: str | None = None) -> bytes:
    from datetime import UTC, datetime

    envelope = make_envelope(
        type=type_, device=DEVICE.device, seq=1, body=body, now=datetime.now(UTC),
        clock_synced=True, id=msg_id,
    )  # fmt: skip
    return envelope.to_bytes()


def micropay(backend: Backend, code: str, msg_id: str | None = None) -> bytes:
    request = MicropayRequest(
        trade_no=TRADE,
        sale_id="sale-1",
        method=PayMethod.WECHAT,
        amount_fen=990,
        sealed_code=seal_code(code, TRADE, backend.keys.seal.public_key()),
    )
    return uplink("pay.micropay", dump_body(request), msg_id)


def result(out: list[Outgoing], backend: Backend) -> dict[str, object]:
    [reply] = out
    assert reply.topic == "edge/v1/s1/k1/cmd/pay"
    envelope = decode_envelope(reply.payload)
    key = Ed25519PublicKey.from_public_bytes(unb64(backend.keys.signing_public_b64))
    verify_envelope(envelope, [key])
    assert envelope.exp is not None
    return envelope.body


def test_success_is_signed_and_a_repeat_is_dropped_by_id(backend: Backend) -> None:
    topic = DEVICE.uplink(Uplink.PAY)
    payload = micropay(backend, "134567890123456789", msg_id="01900000-0000-7000-8000-000000000001")
    assert result(backend.handle(topic, payload), backend)["state"] == "SUCCESS"
    assert backend.handle(topic, payload) == []
    assert backend.duplicates == 1
    # a retry of the same trade under a new id answers, and never charges again
    again = micropay(backend, "134567890123456789")
    assert result(backend.handle(topic, again), backend)["state"] == "SUCCESS"
    assert backend.trades[TRADE].charges == 1


@pytest.mark.parametrize(
    ("ending", "first", "after_reverse"),
    [
        ("01", "FAILED", "FAILED"),
        ("03", "USERPAYING", "REVERSED"),
        ("05", "USERPAYING", "SUCCESS"),
        ("06", "UNKNOWN", "REVERSED"),
    ],
)
def test_scenario_by_the_code_ending(
    backend: Backend, ending: str, first: str, after_reverse: str
) -> None:
    topic = DEVICE.uplink(Uplink.PAY)
    assert result(backend.handle(topic, micropay(backend, "13456789012345" + "67" + ending)),
                  backend)["state"] == first  # fmt: skip
    reverse = uplink("pay.reverse", {"trade_no": TRADE, "reason": "deadline", "attempt": 1})
    assert result(backend.handle(topic, reverse), backend)["state"] == after_reverse


def test_no_answer_stays_silent_until_the_reverse(backend: Backend) -> None:
    topic = DEVICE.uplink(Uplink.PAY)
    assert backend.handle(topic, micropay(backend, "134567890123456704")) == []
    query = uplink("pay.query", dump_body(QueryRequest(trade_no=TRADE, attempt=1)))
    assert backend.handle(topic, query) == []


def test_a_code_that_is_not_a_payment_code_is_declined(backend: Backend) -> None:
    topic = DEVICE.uplink(Uplink.PAY)
    body = result(backend.handle(topic, micropay(backend, "6901234567892")), backend)
    assert body["state"] == "FAILED" and body["reason"] == "invalid payment code"


def test_junk_on_the_wire_is_dropped(backend: Backend) -> None:
    topic = DEVICE.uplink(Uplink.PAY)
    assert backend.handle(topic, b"{not json") == []
    assert backend.handle(topic, uplink("pay.query", {"trade_no": 5})) == []
    assert backend.handle("edge/v1/s1/other/evt/pay", micropay(backend, "134567890123456789")) == []


def test_keys_are_made_once_with_0600_files(tmp_path: Path) -> None:
    first = ensure_keys(tmp_path / "k")
    again = ensure_keys(tmp_path / "k")
    assert first.signing_public_b64 == again.signing_public_b64
    for path in (tmp_path / "k").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "signing_ed25519" in json.loads((tmp_path / "k" / KEY_FILE).read_text())


def test_simulated_mode_trusts_the_simulator_and_remote_mode_only_config(tmp_path: Path) -> None:
    simulated = with_backend_keys(DaemonConfig.model_validate({"paths": {"data_dir": tmp_path}}))
    keys = ensure_keys(tmp_path / "cloudsim")
    assert simulated.security.trusted_keys == [keys.signing_public_b64]
    assert simulated.security.backend_seal_key == keys.seal_public_b64
    load_seal_public_key(keys.seal_public_b64)
    remote = DaemonConfig.model_validate(
        {"paths": {"data_dir": tmp_path / "r"}, "cloud": {"mode": "remote"}}
    )
    assert with_backend_keys(remote) == remote
    assert not (tmp_path / "r" / "cloudsim").exists()
