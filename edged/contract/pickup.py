"""The pickup QR: a signed `order.pickup` envelope as text a camera or scanner reads back.

`EDPK1:` then the envelope's canonical JSON in unpadded base64url, so a keyboard-wedge
scanner with any layout types it back unchanged (no quotes or braces). The envelope is the
one envelope codec's and its signature the one signing helper's: the kiosk verifies it with
the same trusted keys as any downlink, offline.
"""

from __future__ import annotations

import base64
import binascii

from edged.contract.envelope import Envelope, EnvelopeError, decode_envelope

PICKUP_PREFIX = "EDPK1:"
PICKUP_TYPE = "order.pickup"
MAX_TOKEN_CHARS = 1024


def encode_pickup_token(envelope: Envelope) -> str:
    raw = base64.urlsafe_b64encode(envelope.to_bytes()).rstrip(b"=").decode("ascii")
    return PICKUP_PREFIX + raw


def is_pickup_token(text: str) -> bool:
    return text.strip().startswith(PICKUP_PREFIX)


def decode_pickup_token(text: str) -> Envelope:
    """The envelope a scanned token carries; raises EnvelopeError (nothing else) when bad."""
    text = text.strip()
    if not text.startswith(PICKUP_PREFIX):
        raise EnvelopeError("not a pickup code")
    if len(text) > MAX_TOKEN_CHARS:
        raise EnvelopeError("pickup code too long")
    data = text[len(PICKUP_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        raise EnvelopeError("pickup code is not base64url") from None
    return decode_envelope(raw, max_bytes=MAX_TOKEN_CHARS)
