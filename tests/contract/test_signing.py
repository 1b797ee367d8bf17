"""Signature verification: key rotation, strict base64, and the reason for every refusal."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edged.contract.envelope import Envelope
from edged.contract.signing import (
    SignatureError,
    load_public_keys,
    public_key_b64,
    sign_envelope,
    unb64,
    verify_envelope,
)
from tests.contract.test_golden_vectors import KEY, PAY_RESULT, PAY_RESULT_SIG, PUBLIC_B64

OLD = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
NEW = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
STRANGER = Ed25519PrivateKey.from_private_bytes(bytes(range(64, 96)))
ENVELOPE = Envelope.model_validate(PAY_RESULT)


def refusal(envelope: Envelope, trusted: list[Ed25519PrivateKey]) -> str:
    with pytest.raises(SignatureError) as caught:
        verify_envelope(envelope, [key.public_key() for key in trusted])
    return str(caught.value)


def test_during_a_key_rotation_a_message_signed_by_either_trusted_key_verifies() -> None:
    """The backend rotates keys by shipping the new one first: both are trusted for a while."""
    trusted = [OLD.public_key(), NEW.public_key()]
    verify_envelope(sign_envelope(ENVELOPE, NEW), trusted)  # the second key, after the first
    verify_envelope(sign_envelope(ENVELOPE, OLD), trusted)
    verify_envelope(sign_envelope(ENVELOPE, NEW), [STRANGER.public_key(), *trusted])


def test_a_message_signed_by_no_trusted_key_is_refused_whatever_the_list() -> None:
    forged = sign_envelope(ENVELOPE, STRANGER)
    assert refusal(forged, [OLD, NEW]) == "signature matches no trusted key"
    assert refusal(forged, [OLD]) == "signature matches no trusted key"
    assert refusal(forged, []) == "signature matches no trusted key"


def test_a_retired_key_no_longer_verifies() -> None:
    assert refusal(sign_envelope(ENVELOPE, OLD), [NEW]) == "signature matches no trusted key"


def test_unsigned_and_empty_signatures_are_refused_as_unsigned() -> None:
    assert refusal(ENVELOPE, [KEY]) == "unsigned"
    assert refusal(ENVELOPE.model_copy(update={"sig": ""}), [KEY]) == "unsigned"


@pytest.mark.parametrize(
    "junk",
    [
        pytest.param(PAY_RESULT_SIG[:10] + "*" + PAY_RESULT_SIG[10:], id="star-inside"),
        pytest.param(PAY_RESULT_SIG[:10] + "\n" + PAY_RESULT_SIG[10:], id="newline-inside"),
        pytest.param(" " + PAY_RESULT_SIG, id="leading-space"),
        pytest.param(PAY_RESULT_SIG + "\n", id="trailing-newline"),
        pytest.param(PAY_RESULT_SIG + "!!", id="trailing-junk"),
        pytest.param(PAY_RESULT_SIG.rstrip("="), id="padding-missing"),
        pytest.param(PAY_RESULT_SIG.replace("/", "_").replace("+", "-"), id="url-safe-alphabet"),
        pytest.param("签名" + PAY_RESULT_SIG, id="non-ascii"),
    ],
)
def test_a_signature_with_junk_characters_is_not_base64_even_when_the_rest_is_valid(
    junk: str,
) -> None:
    """A lenient decoder drops junk and would accept these: the exact bytes must be base64."""
    assert junk != PAY_RESULT_SIG
    envelope = ENVELOPE.model_copy(update={"sig": junk})
    assert refusal(envelope, [KEY]) == "signature is not base64"


def test_the_clean_signature_next_to_the_junk_ones_verifies() -> None:
    verify_envelope(ENVELOPE.model_copy(update={"sig": PAY_RESULT_SIG}), [KEY.public_key()])


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(base64.b64encode(bytes(64)).decode(), id="zeros"),
        pytest.param(base64.b64encode(bytes(63)).decode(), id="too-short"),
        pytest.param(
            base64.b64encode(base64.b64decode(PAY_RESULT_SIG) + b"\0").decode(), id="long"
        ),
        pytest.param(PAY_RESULT_SIG[:-4] + "AAA=", id="last-bytes-changed"),
    ],
)
def test_well_formed_base64_that_is_not_this_signature_matches_no_key(signature: str) -> None:
    envelope = ENVELOPE.model_copy(update={"sig": signature})
    assert refusal(envelope, [KEY]) == "signature matches no trusted key"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"body": {**PAY_RESULT["body"], "amount_fen": 1}}, id="amount"),  # type: ignore[dict-item]
        pytest.param({"device": "k2"}, id="device"),
        pytest.param({"exp": "2025-01-01T13:05:00.000Z"}, id="exp-extended"),
        pytest.param({"exp": None}, id="exp-removed"),
        pytest.param({"seq": 43}, id="seq"),
        pytest.param({"clock_synced": False}, id="clock-synced"),
    ],
)
def test_any_change_after_signing_breaks_the_signature(change: dict[str, object]) -> None:
    signed = sign_envelope(ENVELOPE, KEY)
    verify_envelope(signed, [KEY.public_key()])
    tampered = Envelope.model_validate({**signed.model_dump(), **change})
    assert refusal(tampered, [KEY]) == "signature matches no trusted key"


def test_trusted_keys_load_from_strict_base64() -> None:
    [loaded] = load_public_keys([PUBLIC_B64])
    assert loaded.public_bytes_raw() == KEY.public_key().public_bytes_raw()
    assert public_key_b64(KEY) == PUBLIC_B64
    for bad in (PUBLIC_B64 + "\n", PUBLIC_B64.rstrip("="), "*" + PUBLIC_B64):
        with pytest.raises(ValueError, match=r"^not valid base64$"):
            load_public_keys([bad])
    assert unb64("QUJD") == b"ABC"
