"""Seal a payment code to the backend's X25519 key, so only the backend can read it.

An ephemeral X25519 key agreement, HKDF-SHA256 and AES-256-GCM with the trade number as
associated data: a sealed code cannot be replayed under another trade number, and nothing on
the way (broker, outbox, logs) ever holds the code in the clear. The simulated cloud opens it
with `open_code`, exactly as the real backend would.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from edged.contract.bodies import SealedCode
from edged.contract.signing import b64, unb64

INFO = b"edged/v1 payment code"


class SealError(ValueError):
    """A sealed code that cannot be opened: wrong key, tampered, or another trade number."""


def load_seal_public_key(encoded: str) -> X25519PublicKey:
    try:
        return X25519PublicKey.from_public_bytes(unb64(encoded))
    except ValueError:
        raise ValueError("backend seal key is not a base64 X25519 public key") from None


def _key(shared: bytes, epk: bytes, recipient: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None, info=INFO + epk + recipient).derive(shared)


def seal_code(code: str, trade_no: str, recipient: X25519PublicKey) -> SealedCode:
    ephemeral = X25519PrivateKey.generate()
    epk = ephemeral.public_key().public_bytes_raw()
    key = _key(ephemeral.exchange(recipient), epk, recipient.public_bytes_raw())
    nonce = os.urandom(12)
    ct = AESGCM(key).encrypt(nonce, code.encode("ascii"), trade_no.encode("ascii"))
    return SealedCode(epk=b64(epk), nonce=b64(nonce), ct=b64(ct))


def open_code(sealed: SealedCode, trade_no: str, private: X25519PrivateKey) -> str:
    try:
        epk = unb64(sealed.epk)
        nonce = unb64(sealed.nonce)
        ct = unb64(sealed.ct)
        peer = X25519PublicKey.from_public_bytes(epk)
        recipient = private.public_key().public_bytes_raw()
        key = _key(private.exchange(peer), epk, recipient)
        plain = AESGCM(key).decrypt(nonce, ct, trade_no.encode("ascii"))
        return plain.decode("ascii")
    except (InvalidTag, ValueError, UnicodeDecodeError):
        raise SealError("sealed code cannot be opened") from None
