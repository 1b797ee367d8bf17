"""Sealing: only the backend's key opens a code, and only under the trade number sealed for."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edged.contract.signing import b64, unb64
from edged.services.payments.codes import classify_payment_code
from edged.services.payments.protocol import PaymentMethod
from edged.services.payments.sealing import SealError, open_code, seal_code

CODE = "134567890123456789"
TRADE = "0190aabbccddeeff0011223344556677"


def test_round_trip_and_the_code_is_not_in_the_sealed_message() -> None:
    backend = X25519PrivateKey.generate()
    sealed = seal_code(CODE, TRADE, backend.public_key())
    assert CODE not in sealed.model_dump_json()
    assert open_code(sealed, TRADE, backend) == CODE


def test_each_seal_is_fresh() -> None:
    backend = X25519PrivateKey.generate()
    one = seal_code(CODE, TRADE, backend.public_key())
    two = seal_code(CODE, TRADE, backend.public_key())
    assert one.ct != two.ct and one.epk != two.epk


def test_another_trade_number_cannot_open_it() -> None:
    backend = X25519PrivateKey.generate()
    sealed = seal_code(CODE, TRADE, backend.public_key())
    with pytest.raises(SealError):
        open_code(sealed, TRADE[:-1] + "8", backend)


def test_another_key_cannot_open_it() -> None:
    sealed = seal_code(CODE, TRADE, X25519PrivateKey.generate().public_key())
    with pytest.raises(SealError):
        open_code(sealed, TRADE, X25519PrivateKey.generate())


@pytest.mark.parametrize("field", ["ct", "nonce", "epk"])
def test_tampering_is_detected(field: str) -> None:
    backend = X25519PrivateKey.generate()
    sealed = seal_code(CODE, TRADE, backend.public_key())
    raw = bytearray(unb64(getattr(sealed, field)))
    raw[0] ^= 0x01
    tampered = sealed.model_copy(update={field: b64(bytes(raw))})
    with pytest.raises(SealError):
        open_code(tampered, TRADE, backend)


@pytest.mark.parametrize(
    ("text", "method"),
    [
        ("134567890123456789", PaymentMethod.WECHAT),
        ("104567890123456789", PaymentMethod.WECHAT),
        ("284567890123456789", PaymentMethod.ALIPAY),
        ("2845678901234567", PaymentMethod.ALIPAY),
        ("304567890123456789012345", PaymentMethod.ALIPAY),
        ("164567890123456789", None),
        ("13456789012345678", None),
        ("6901234567892", None),
        ("13456789012345678x", None),
        ("\uff11\uff134567890123456789", None),
        ("", None),
    ],
)
def test_payment_codes_are_classified_by_prefix_and_length(
    text: str, method: PaymentMethod | None
) -> None:
    assert classify_payment_code(text) is method
