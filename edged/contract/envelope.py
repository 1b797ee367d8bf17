"""The one envelope codec: every payload on every topic is one of these, as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edged.contract.ids import new_id
from edged.contract.strict_json import JsonRejected, loads_bounded

MAX_ENVELOPE_BYTES = 256 * 1024


class EnvelopeError(ValueError):
    """A payload that is not a valid envelope; the message says why, safe to log."""


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("timestamp needs a UTC offset")
    return moment


SIG_DESCRIPTION = (
    "Ed25519 signature (RFC 8032), standard base64 with padding (RFC 4648 section 4; no "
    "whitespace, no URL-safe alphabet), over the envelope's canonical bytes: the envelope "
    "without `sig`, top-level fields that are absent or null left out (`exp` when there is "
    "none), serialized as UTF-8 JSON with the keys of every object sorted, no whitespace "
    "(separators `,` and `:`), non-ASCII characters as themselves rather than \\u escapes, "
    "and nulls inside `body` kept. The kiosk re-serializes what it received, so the key "
    "order and spacing on the wire do not matter. Test vectors, Ed25519 seed (hex) "
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60, public key (base64) "
    "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo= (RFC 8032 section 7.1, test 1). "
    "(1) With exp: canonical bytes "
    '{"body":{"amount_fen":1250,"paid_at":null,"reason":"","state":"SUCCESS",'
    '"trade_no":"T20250101120000001","transaction_id":"4200001234"},"clock_synced":true,'
    '"device":"k1","exp":"2025-01-01T12:05:00.000Z","id":"golden-pay-0001","seq":42,'
    '"ts":"2025-01-01T12:00:00.000Z","type":"pay.result","v":1} '
    "give sig "
    "jY/U8e6Qd9ft+wWaPiDNwpmYMeo/f741H6K+XMuM+rkFpaIeIfciIv/GYdiCb9Tix18nV29LZKHNT0amaYWLCQ== . "
    "(2) Without exp: "
    '{"body":{"n":1},"clock_synced":false,"device":"k1","id":"golden-op-0001","seq":0,'
    '"ts":"2025-01-01T12:00:00.000Z","type":"op.reprint","v":1} '
    "give sig "
    "BJge1vWoHNGiA/WDaUNg0PFeaW39d3r3zcCONKLgWuBD0EsosgOpwQ468maKGO3hMPkYiXklPFF5VId/9r7uDw== . "
    "(3) A Chinese body (UTF-8): "
    '{"body":{"items":[{"barcode":"6901028075831","name":"农夫山泉 天然水 550ml",'
    '"price_fen":200}],"version":7},"clock_synced":true,"device":"k1",'
    '"exp":"2025-01-01T13:00:00.000Z","id":"golden-stock-0001","seq":3,'
    '"ts":"2025-01-01T12:00:00.000Z","type":"stock.update","v":1} '
    "give sig "
    "gs//3mpRkRT6lWSQ4VB/3a11DzYniODi7yBJScTV8/uuTIrypm+DgYLCt6ZrtG4WrWSVIPB3vgEEyGBN2F9uCw== ."
)
"""What the AsyncAPI document says about `sig`; tests/contract/test_golden_vectors.py checks
that these vectors are exactly what the code signs."""


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    type: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.]+$")
    device: str = Field(min_length=1, max_length=64)
    seq: int = Field(ge=0)
    ts: str
    clock_synced: bool
    body: dict[str, Any]
    exp: str | None = None
    sig: str | None = Field(default=None, description=SIG_DESCRIPTION)

    @field_validator("ts", "exp")
    @classmethod
    def _timestamp(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rfc3339(value)
        return value

    def expires_at(self) -> datetime | None:
        return parse_rfc3339(self.exp) if self.exp else None

    def signing_bytes(self) -> bytes:
        """Canonical bytes a signature covers: the envelope without `sig`, keys sorted."""
        fields = self.model_dump(exclude={"sig"}, exclude_none=True)
        return canonical_json(fields)

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(exclude_none=True))


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def make_envelope(
    *,
    type: str,
    device: str,
    seq: int,
    body: dict[str, Any],
    now: datetime,
    clock_synced: bool,
    ttl: timedelta | None = None,
    id: str | None = None,
) -> Envelope:
    return Envelope(
        id=id or new_id(),
        type=type,
        device=device,
        seq=seq,
        ts=rfc3339(now),
        clock_synced=clock_synced,
        body=body,
        exp=rfc3339(now + ttl) if ttl else None,
    )


def first_problem(exc: ValidationError, root: str) -> str:
    """`dotted.path: message` of a validation error's first problem, safe to log."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or root
    return f"{where}: {first['msg']}"


def decode_envelope(payload: bytes, max_bytes: int = MAX_ENVELOPE_BYTES) -> Envelope:
    """Parse untrusted bytes; raises EnvelopeError (never anything else) when they are bad.

    The JSON is bounded before it is parsed (`edged.contract.strict_json`): size, nesting,
    number length, non-finite numbers, duplicate keys and lone surrogates are refused.
    """
    if len(payload) > max_bytes:
        raise EnvelopeError(f"oversized: {len(payload)} bytes > {max_bytes}")
    try:
        data = loads_bounded(payload)
    except JsonRejected as exc:
        raise EnvelopeError(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EnvelopeError("malformed: envelope is not a JSON object")
    try:
        return Envelope.model_validate(data)
    except ValidationError as exc:
        raise EnvelopeError(f"malformed: {first_problem(exc, 'envelope')}") from None
    except Exception as exc:
        raise EnvelopeError(f"malformed: {type(exc).__name__}") from None
