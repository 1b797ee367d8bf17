"""Poison downlink payloads: bytes that once crashed the link task, and their relatives.

Each shape is built around a real envelope for the given audience (`device` field), signed
by `key`, so it is "near valid": only the poison is wrong. `POISON_DETAILS` is the exact
rejection each one must get (reason `malformed`, this detail).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edged.contract.envelope import make_envelope
from edged.contract.signing import sign_envelope

DEPTH = 5000


def signed_bytes(key: Ed25519PrivateKey, audience: str, type: str = "op.reprint") -> bytes:
    envelope = make_envelope(
        type=type,
        device=audience,
        seq=1,
        body={"n": 1},
        now=datetime.now(UTC),
        clock_synced=True,
        ttl=timedelta(minutes=5),
    )
    return sign_envelope(envelope, key).to_bytes()


def _in_body(valid: bytes, member: bytes) -> bytes:
    """The signed envelope with one more member in its body (the signature no longer fits
    the body, but no verifier gets that far)."""
    assert valid.startswith(b'{"body":{')
    return b'{"body":{' + member + b"," + valid[len(b'{"body":{') :]


def poison_payloads(key: Ed25519PrivateKey, audience: str) -> dict[str, bytes]:
    valid = signed_bytes(key, audience)
    return {
        # The first shape, as reproduced: unsigned, 5 KB, to any topic.
        "huge_int_unsigned": b'{"v":1,"seq":' + b"9" * 5000 + b"}",
        "huge_int_signed": _in_body(valid, b'"x":' + b"9" * 5000),
        # The second: a lone surrogate in body plus any base64 sig.
        "lone_surrogate_signed": _in_body(valid, b'"x":"\\ud800"'),
        "lone_low_surrogate_key": _in_body(valid, b'"\\udc00":1'),
        "raw_surrogate_bytes": _in_body(valid, b'"x":"\xed\xa0\x80"'),
        "not_utf8": b"\xff\xfe{" + valid[1:],
        "nan": _in_body(valid, b'"x":NaN'),
        "infinity": _in_body(valid, b'"x":Infinity'),
        "minus_infinity": _in_body(valid, b'"x":-Infinity'),
        "float_overflow": _in_body(valid, b'"x":1e999'),
        "long_fraction": _in_body(valid, b'"x":0.' + b"1" * 400),
        "duplicate_key": valid[:-1] + b',"body":{"n":2}}',
        "deep_nesting": _in_body(valid, b'"x":' + b"[" * DEPTH + b"]" * DEPTH),
    }


POISON_DETAILS = {
    "huge_int_unsigned": "malformed JSON: number of 5000 characters > 32",
    "huge_int_signed": "malformed JSON: number of 5000 characters > 32",
    "lone_surrogate_signed": "malformed JSON: invalid UTF-16: a lone surrogate escape",
    "lone_low_surrogate_key": "malformed JSON: invalid UTF-16: a lone surrogate escape",
    "raw_surrogate_bytes": "malformed JSON: UnicodeDecodeError",
    "not_utf8": "malformed JSON: UnicodeDecodeError",
    "nan": "malformed JSON: non-finite number NaN",
    "infinity": "malformed JSON: non-finite number Infinity",
    "minus_infinity": "malformed JSON: non-finite number -Infinity",
    "float_overflow": "malformed JSON: number out of range: 1e999",
    "long_fraction": "malformed JSON: number of 402 characters > 32",
    "duplicate_key": "malformed JSON: duplicate key 'body'",
    "deep_nesting": f"malformed JSON: nested {DEPTH + 2} deep > 32",
}
