"""The downlink verifier's exact verdict for each refused envelope: reason and detail."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edged.contract.topics import DeviceTopics, Downlink
from edged.link.downlink import DownlinkRejected, DownlinkVerifier
from tests.link.helpers import DEVICE, SITE, FixedClock, signed_downlink

TOPICS = DeviceTopics(SITE, DEVICE)
OP = TOPICS.downlink(Downlink.OP)
NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)
OLD = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
NEW = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
STRANGER = Ed25519PrivateKey.from_private_bytes(bytes(range(64, 96)))


def verifier(*trusted: Ed25519PrivateKey, max_bytes: int = 4096) -> DownlinkVerifier:
    return DownlinkVerifier(
        TOPICS,
        [key.public_key() for key in trusted],
        FixedClock(NOW),
        max_bytes=max_bytes,
        max_clock_skew_s=60,
    )


def verdict(check: DownlinkVerifier, payload: bytes, topic: str = OP) -> str:
    with pytest.raises(DownlinkRejected) as caught:
        check.check(topic, payload)
    return str(caught.value)


def test_with_two_trusted_keys_the_second_verifies_and_a_third_does_not() -> None:
    check = verifier(OLD, NEW)
    envelope, address = check.check(OP, signed_downlink(NEW, now=NOW))
    assert address.kind is Downlink.OP and envelope.device == DEVICE
    check.check(OP, signed_downlink(OLD, now=NOW))
    assert verdict(check, signed_downlink(STRANGER, now=NOW)) == (
        "forged: signature matches no trusted key"
    )


def test_no_trusted_key_at_all_refuses_every_signed_message() -> None:
    assert verdict(verifier(), signed_downlink(NEW, now=NOW)) == (
        "forged: signature matches no trusted key"
    )


def _sig_replaced(payload: bytes, sig: object) -> bytes:
    data = json.loads(payload)
    data["sig"] = sig
    return json.dumps(data).encode()


def test_each_refused_envelope_gets_its_exact_reason_and_detail() -> None:
    check = verifier(OLD, NEW)
    good = signed_downlink(NEW, now=NOW)
    sig = json.loads(good)["sig"]
    cases = [
        (signed_downlink(NEW, now=NOW, sign=False), "unsigned: unsigned"),
        (_sig_replaced(good, sig[:5] + "*" + sig[5:]), "forged: signature is not base64"),
        (_sig_replaced(good, sig + "\n"), "forged: signature is not base64"),
        (_sig_replaced(good, ""), "forged: unsigned"),
        (signed_downlink(NEW, now=NOW, ttl=None), "no_expiry: signed downlink without exp"),
        (
            signed_downlink(NEW, now=NOW - timedelta(minutes=7)),
            "expired: exp 2025-01-01T11:58:00.000Z",
        ),
        (signed_downlink(NEW, now=NOW, device="k2"),
         "misaddressed: envelope.device is not this device"),
        (b"[]", "malformed: malformed: envelope is not a JSON object"),
        (b"x" * 4097, "oversized: 4097 bytes > 4096"),
    ]  # fmt: skip
    for payload, expected in cases:
        assert verdict(check, payload) == expected, payload[:60]
    assert verdict(check, good, "edge/v1/s1/k2/cmd/op") == (
        "misaddressed: not a downlink topic of this device"
    )
    # Its exp passed 59 s ago, within the 60 s skew: accepted.
    check.check(OP, signed_downlink(NEW, now=NOW - timedelta(minutes=5, seconds=59)))
