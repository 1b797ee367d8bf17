"""Golden vectors: exact canonical bytes and exact Ed25519 signatures from a fixed seed.

Signer and verifier share `signing_bytes()`, so a round-trip test passes whatever those bytes
are; the backend signs with its own code and only agrees with the kiosk on these exact bytes.
The same vectors are in the AsyncAPI document's description of `sig`, for the backend team.
"""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edged.contract import asyncapi
from edged.contract.envelope import Envelope, decode_envelope
from edged.contract.signing import public_key_b64, sign_envelope, verify_envelope

# RFC 8032 section 7.1, test 1: a published key pair, so any Ed25519 library can be checked.
SEED_HEX = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
PUBLIC_B64 = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
KEY = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(SEED_HEX))

PAY_RESULT = {  # with `exp`, a null inside the body (it stays), an empty string
    "v": 1,
    "id": "golden-pay-0001",
    "type": "pay.result",
    "device": "k1",
    "seq": 42,
    "ts": "2025-01-01T12:00:00.000Z",
    "clock_synced": True,
    "body": {
        "trade_no": "T20250101120000001",
        "amount_fen": 1250,
        "state": "SUCCESS",
        "reason": "",
        "transaction_id": "4200001234",
        "paid_at": None,
    },
    "exp": "2025-01-01T12:05:00.000Z",
}
PAY_RESULT_BYTES = (
    b'{"body":{"amount_fen":1250,"paid_at":null,"reason":"","state":"SUCCESS",'
    b'"trade_no":"T20250101120000001","transaction_id":"4200001234"},"clock_synced":true,'
    b'"device":"k1","exp":"2025-01-01T12:05:00.000Z","id":"golden-pay-0001","seq":42,'
    b'"ts":"2025-01-01T12:00:00.000Z","type":"pay.result","v":1}'
)
PAY_RESULT_SIG = (
    "jY/U8e6Qd9ft+wWaPiDNwpmYMeo/f741H6K+XMuM+rkFpaIeIfciIv/GYdiCb9Tix18nV29LZKHNT0amaYWLCQ=="
)

NO_EXP = {  # no `exp` at all: the key is absent from the signed bytes, not null
    "v": 1,
    "id": "golden-op-0001",
    "type": "op.reprint",
    "device": "k1",
    "seq": 0,
    "ts": "2025-01-01T12:00:00.000Z",
    "clock_synced": False,
    "body": {"n": 1},
}
NO_EXP_BYTES = (
    b'{"body":{"n":1},"clock_synced":false,"device":"k1","id":"golden-op-0001","seq":0,'
    b'"ts":"2025-01-01T12:00:00.000Z","type":"op.reprint","v":1}'
)
NO_EXP_SIG = (
    "BJge1vWoHNGiA/WDaUNg0PFeaW39d3r3zcCONKLgWuBD0EsosgOpwQ468maKGO3hMPkYiXklPFF5VId/9r7uDw=="
)

CHINESE = {  # a product name in Chinese: raw UTF-8 in the signed bytes, never \u escapes
    "v": 1,
    "id": "golden-stock-0001",
    "type": "stock.update",
    "device": "k1",
    "seq": 3,
    "ts": "2025-01-01T12:00:00.000Z",
    "clock_synced": True,
    "body": {
        "version": 7,
        "items": [{"barcode": "6901028075831", "name": "农夫山泉 天然水 550ml", "price_fen": 200}],
    },
    "exp": "2025-01-01T13:00:00.000Z",
}
CHINESE_BYTES = (
    b'{"body":{"items":[{"barcode":"6901028075831","name":"'
    b"\xe5\x86\x9c\xe5\xa4\xab\xe5\xb1\xb1\xe6\xb3\x89 \xe5\xa4\xa9\xe7\x84\xb6\xe6\xb0\xb4 550ml"
    b'","price_fen":200}],"version":7},"clock_synced":true,"device":"k1",'
    b'"exp":"2025-01-01T13:00:00.000Z","id":"golden-stock-0001","seq":3,'
    b'"ts":"2025-01-01T12:00:00.000Z","type":"stock.update","v":1}'
)
CHINESE_SIG = (
    "gs//3mpRkRT6lWSQ4VB/3a11DzYniODi7yBJScTV8/uuTIrypm+DgYLCt6ZrtG4WrWSVIPB3vgEEyGBN2F9uCw=="
)

VECTORS = [
    pytest.param(PAY_RESULT, PAY_RESULT_BYTES, PAY_RESULT_SIG, id="with-exp"),
    pytest.param(NO_EXP, NO_EXP_BYTES, NO_EXP_SIG, id="without-exp"),
    pytest.param(CHINESE, CHINESE_BYTES, CHINESE_SIG, id="chinese-body"),
]


def reordered(value: object) -> object:
    """The same JSON value with every object's keys in reverse order, at every level."""
    if isinstance(value, dict):
        return {key: reordered(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(item) for item in value]
    return value


def test_the_seed_gives_the_published_public_key() -> None:
    assert public_key_b64(KEY) == PUBLIC_B64


@pytest.mark.parametrize(("fields", "canonical", "sig"), VECTORS)
def test_signing_bytes_and_signature_are_exactly_the_vector(
    fields: dict[str, object], canonical: bytes, sig: str
) -> None:
    envelope = Envelope.model_validate(fields)
    assert envelope.signing_bytes() == canonical
    signed = sign_envelope(envelope, KEY)
    assert signed.sig == sig
    verify_envelope(signed, [KEY.public_key()])


@pytest.mark.parametrize(("fields", "canonical", "sig"), VECTORS)
def test_key_order_and_whitespace_on_the_wire_do_not_change_the_signed_bytes(
    fields: dict[str, object], canonical: bytes, sig: str
) -> None:
    """The backend's JSON library orders and spaces keys its own way; the kiosk re-canonicalises."""
    wire = json.dumps({**reordered(fields), "sig": sig}, indent=2, ensure_ascii=True)
    assert not wire.startswith('{\n  "v"')  # really in another order than the model's
    received = decode_envelope(wire.encode())
    assert received.signing_bytes() == canonical
    assert received.sig == sig
    verify_envelope(received, [KEY.public_key()])
    built = Envelope.model_validate(reordered(fields))
    assert built.signing_bytes() == canonical
    assert sign_envelope(built, KEY).sig == sig


def test_sig_is_not_covered_and_to_bytes_is_the_canonical_bytes_plus_sig() -> None:
    signed = Envelope.model_validate({**PAY_RESULT, "sig": PAY_RESULT_SIG})
    assert signed.signing_bytes() == PAY_RESULT_BYTES
    assert signed.to_bytes() == PAY_RESULT_BYTES.replace(
        b'"seq":42,', b'"seq":42,"sig":"' + PAY_RESULT_SIG.encode() + b'",'
    )


def test_the_asyncapi_description_of_sig_carries_the_same_vectors() -> None:
    doc = json.loads(asyncapi.DOCUMENT.read_text(encoding="utf-8"))
    description = doc["components"]["schemas"]["Envelope"]["properties"]["sig"]["description"]
    assert SEED_HEX in description and PUBLIC_B64 in description
    for fields, canonical, sig in (
        (PAY_RESULT, PAY_RESULT_BYTES, PAY_RESULT_SIG),
        (NO_EXP, NO_EXP_BYTES, NO_EXP_SIG),
        (CHINESE, CHINESE_BYTES, CHINESE_SIG),
    ):
        assert canonical.decode("utf-8") in description, fields["id"]
        assert sig in description, fields["id"]
