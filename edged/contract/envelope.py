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
    sig: str | None = None

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
