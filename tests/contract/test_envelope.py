"""The envelope codec: what it accepts, up to the exact size limit, and why it refuses the rest."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from edged.contract.envelope import (
    Envelope,
    EnvelopeError,
    decode_envelope,
    make_envelope,
    parse_rfc3339,
    rfc3339,
)
from tests.contract.test_golden_vectors import NO_EXP, NO_EXP_BYTES, PAY_RESULT, PAY_RESULT_BYTES


def refusal(payload: bytes, max_bytes: int = 4096) -> str:
    with pytest.raises(EnvelopeError) as caught:
        decode_envelope(payload, max_bytes)
    return str(caught.value)


def with_(**change: object) -> bytes:
    return json.dumps({**PAY_RESULT, **change}).encode()


def test_a_payload_of_exactly_max_bytes_is_decoded_and_one_byte_more_is_oversized() -> None:
    payload = PAY_RESULT_BYTES
    exact = len(payload)
    assert decode_envelope(payload, max_bytes=exact) == Envelope.model_validate(PAY_RESULT)
    padded = payload + b" "  # still valid JSON, one byte over
    assert refusal(padded, max_bytes=exact) == f"oversized: {exact + 1} bytes > {exact}"
    assert decode_envelope(padded, max_bytes=exact + 1).id == "golden-pay-0001"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "malformed JSON: JSONDecodeError"),
        (b"{not json", "malformed JSON: JSONDecodeError"),
        (b"\xff\xfe{}", "malformed JSON: UnicodeDecodeError"),
        (b"[" * 3000 + b"]" * 3000, "malformed JSON: nested 3000 deep > 32"),
        (b'{"id": "a", "id": "b"}', "malformed JSON: duplicate key 'id'"),
        (b'{"seq": NaN}', "malformed JSON: non-finite number NaN"),
        (b'{"seq": 1e999}', "malformed JSON: number out of range: 1e999"),
        (b'{"seq": ' + b"9" * 40 + b"}", "malformed JSON: number of 40 characters > 32"),
        (b'{"id": "\\ud800"}', "malformed JSON: invalid UTF-16: a lone surrogate escape"),
        (b"[1, 2]", "malformed: envelope is not a JSON object"),
        (b'"an envelope"', "malformed: envelope is not a JSON object"),
        (b"null", "malformed: envelope is not a JSON object"),
        (with_(v=2), "malformed: v: Input should be 1"),
        (with_(id="short"), "malformed: id: String should have at least 8 characters"),
        (with_(id="has space!"), "malformed: id: String should match pattern '^[A-Za-z0-9_-]+$'"),
        (with_(type="Pay.Result"), "malformed: type: String should match pattern '^[a-z0-9_.]+$'"),
        (with_(device=""), "malformed: device: String should have at least 1 character"),
        (with_(seq=-1), "malformed: seq: Input should be greater than or equal to 0"),
        (with_(extra=1), "malformed: extra: Extra inputs are not permitted"),
        (with_(body=[1]), "malformed: body: Input should be a valid dictionary"),
        (with_(ts="2025-01-01T12:00:00"),
         "malformed: ts: Value error, timestamp needs a UTC offset"),
        (with_(exp=5), "malformed: exp: Input should be a valid string"),
        (json.dumps({k: v for k, v in NO_EXP.items() if k != "body"}).encode(),
         "malformed: body: Field required"),
    ],
)  # fmt: skip
def test_each_refused_payload_names_its_reason(payload: bytes, reason: str) -> None:
    assert refusal(payload, max_bytes=100_000) == reason


def test_timestamps_are_utc_milliseconds_with_z() -> None:
    moment = datetime(2025, 1, 1, 20, 0, 0, 123456, tzinfo=UTC)
    assert rfc3339(moment) == "2025-01-01T20:00:00.123Z"
    assert parse_rfc3339("2025-01-01T20:00:00.123Z") == moment.replace(microsecond=123000)
    assert parse_rfc3339("2025-01-02T04:00:00+08:00") == datetime(2025, 1, 1, 20, tzinfo=UTC)


def test_timestamps_are_utc_whatever_the_kiosks_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kiosk in China runs on UTC+8; the wire says Z either way."""
    monkeypatch.setenv("TZ", "CST-8")
    time.tzset()
    try:
        assert rfc3339(datetime(2025, 1, 1, 4, 0, tzinfo=UTC)) == "2025-01-01T04:00:00.000Z"
        local = datetime(2025, 1, 1, 12, 0).astimezone()  # noon in Beijing
        assert rfc3339(local) == "2025-01-01T04:00:00.000Z"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_the_wire_form_leaves_out_absent_fields_as_the_signed_form_does() -> None:
    assert Envelope.model_validate(NO_EXP).to_bytes() == NO_EXP_BYTES


def test_make_envelope_sets_exp_only_with_a_ttl() -> None:
    now = datetime(2025, 1, 1, 12, tzinfo=UTC)
    plain = make_envelope(
        type="op.reprint", device="k1", seq=0, body={"n": 1}, now=now, clock_synced=False,
        id="golden-op-0001",
    )  # fmt: skip
    assert plain == Envelope.model_validate(NO_EXP)
    assert plain.expires_at() is None
    timed = make_envelope(
        type="op.reprint", device="k1", seq=0, body={}, now=now, clock_synced=True,
        ttl=timedelta(minutes=5),
    )  # fmt: skip
    assert timed.exp == "2025-01-01T12:05:00.000Z"
    assert timed.expires_at() == now + timedelta(minutes=5)
    assert (
        len(timed.id) >= 8
        and timed.id
        != make_envelope(type="x", device="k1", seq=0, body={}, now=now, clock_synced=True).id
    )
