"""The one signing helper: Ed25519 over an envelope's canonical bytes."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edged.contract.envelope import Envelope


class SignatureError(ValueError):
    """Unsigned, or signed by no trusted key."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None


def public_key_b64(key: Ed25519PrivateKey) -> str:
    return b64(key.public_key().public_bytes_raw())


def load_public_keys(encoded: Iterable[str]) -> list[Ed25519PublicKey]:
    return [Ed25519PublicKey.from_public_bytes(unb64(item)) for item in encoded]


def sign_envelope(envelope: Envelope, key: Ed25519PrivateKey) -> Envelope:
    signature = key.sign(envelope.signing_bytes())
    return envelope.model_copy(update={"sig": b64(signature)})


def verify_envelope(envelope: Envelope, trusted: Iterable[Ed25519PublicKey]) -> None:
    if not envelope.sig:
        raise SignatureError("unsigned")
    try:
        signature = unb64(envelope.sig)
    except ValueError:
        raise SignatureError("signature is not base64") from None
    data = envelope.signing_bytes()
    for key in trusted:
        try:
            key.verify(signature, data)
            return
        except InvalidSignature:
            continue
    raise SignatureError("signature matches no trusted key")
