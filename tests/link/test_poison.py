"""Poison downlink messages: each is one counted, logged rejection, never the end of the link.

Pinned here: the exact reason and detail of every known poison shape on every downlink topic
(device topics, site and fleet config), that anything a verifier stage or a handler raises
is a rejection of that one message, that only the store itself failing keeps a message for
later, and (hypothesis) that near-valid signed and unsigned envelopes with poison injected,
and raw bytes, are rejected or applied but never raise.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edged.contract.envelope import Envelope, make_envelope
from edged.contract.signing import sign_envelope, verify_envelope
from edged.contract.topics import DeviceTopics, Downlink
from edged.link import downlink as downlink_module
from edged.link.downlink import (
    DownlinkDelivery,
    DownlinkRejected,
    DownlinkRouter,
    DownlinkVerifier,
    StoreUnavailable,
    audience,
)
from edged.store import Store, Transaction
from edged.store.inbox import Inbox
from tests.link.helpers import DEVICE, KNOWN_REASONS, SITE, FixedClock
from tests.support.poison import POISON_DETAILS, poison_payloads

TOPICS = DeviceTopics(SITE, DEVICE)
EVERY_TOPIC = TOPICS.subscriptions()
MAX_BYTES = 64 * 1024


def audience_of(topic: str) -> str:
    address = TOPICS.classify(topic)
    assert address is not None
    return audience(TOPICS, address)


class Router:
    """A store, a router with a handler on every kind, and a loop to drive it from sync code."""

    def __init__(self, path: Path, key: Ed25519PrivateKey) -> None:
        self.loop = asyncio.new_event_loop()
        self.key = key
        self.store: Store = self.loop.run_until_complete(Store.open(path / "p.db", FixedClock()))
        self.verifier = DownlinkVerifier(
            TOPICS, [key.public_key()], FixedClock(), max_bytes=MAX_BYTES, max_clock_skew_s=60
        )
        self.router = DownlinkRouter(TOPICS, self.store, Inbox(self.store), self.verifier)
        self.applied: list[Envelope] = []
        self.fail_with: BaseException | None = None

        async def handler(envelope: Envelope, _tx: Transaction, _d: DownlinkDelivery) -> None:
            if self.fail_with is not None:
                raise self.fail_with
            self.applied.append(envelope)

        for kind in Downlink:
            self.router.register(kind, handler)

    def deliver(self, topic: str, payload: bytes) -> str | None:
        return self.loop.run_until_complete(self.router.deliver(topic, payload))

    def inbox_ids(self) -> list[str]:
        rows = self.loop.run_until_complete(self.store.fetchall("SELECT msg_id FROM inbox"))
        return [row[0] for row in rows]

    def close(self) -> None:
        self.loop.run_until_complete(self.store.close())
        self.loop.close()


@pytest.fixture
def router(tmp_path: Path) -> Iterator[Router]:
    harness = Router(tmp_path, Ed25519PrivateKey.generate())
    yield harness
    harness.close()


def valid(key: Ed25519PrivateKey, topic: str, **changes: Any) -> bytes:
    fields: dict[str, Any] = {
        "type": "op.reprint",
        "device": audience_of(topic),
        "seq": 1,
        "body": {"n": 1},
        "now": datetime.now(UTC),
        "clock_synced": True,
        "ttl": timedelta(minutes=5),
        **changes,
    }
    return sign_envelope(make_envelope(**fields), key).to_bytes()


@pytest.mark.parametrize("topic", EVERY_TOPIC)
@pytest.mark.parametrize("shape", sorted(POISON_DETAILS))
def test_each_poison_shape_is_malformed_with_its_reason_on_every_topic(
    router: Router, shape: str, topic: str
) -> None:
    payload = poison_payloads(router.key, audience_of(topic))[shape]
    with pytest.raises(DownlinkRejected) as rejected:
        router.verifier.check(topic, payload)
    assert (rejected.value.reason, rejected.value.detail) == ("malformed", POISON_DETAILS[shape])

    assert router.deliver(topic, payload) == "malformed"
    assert router.router.stats.rejected == {"malformed": 1}
    assert router.applied == [] and router.inbox_ids() == []
    # the same router applies the next good message
    assert router.deliver(topic, valid(router.key, topic)) is None
    assert len(router.applied) == 1 and router.router.stats.accepted == 1


def test_a_signed_expiry_at_the_end_of_time_is_judged_not_overflowed(router: Router) -> None:
    topic = TOPICS.downlink(Downlink.OP)
    envelope = make_envelope(
        type="op.reprint",
        device=DEVICE,
        seq=1,
        body={},
        now=datetime.now(UTC),
        clock_synced=True,
    ).model_copy(update={"exp": "9999-12-31T23:59:59.999Z"})
    assert router.deliver(topic, sign_envelope(envelope, router.key).to_bytes()) is None
    ancient = envelope.model_copy(update={"id": "ancient-0001", "exp": "0001-01-01T00:00:00Z"})
    assert router.deliver(topic, sign_envelope(ancient, router.key).to_bytes()) == "expired"


@pytest.mark.parametrize(
    "error",
    [
        UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
        RecursionError("deep"),
        ValueError("Exceeds the limit (4300 digits) for integer string conversion"),
        KeyError("amount_fen"),
        OverflowError("date value out of range"),
        sqlite3.IntegrityError("CHECK constraint failed: amount_fen >= 0"),
    ],
    ids=type,
)
def test_whatever_a_handler_raises_rejects_that_message_only(
    router: Router, error: BaseException
) -> None:
    topic = TOPICS.downlink(Downlink.PAY)
    router.fail_with = error
    assert router.deliver(topic, valid(router.key, topic)) == "handler_error"
    assert router.inbox_ids() == [], "rolled back, id included"
    router.fail_with = None
    assert router.deliver(topic, valid(router.key, topic)) is None
    assert router.router.stats.as_dict() == {
        "accepted": 1,
        "rejected": {"handler_error": 1},
        "store_unavailable": 0,
    }


def test_a_verification_that_raises_is_a_forgery_not_a_crash(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(_envelope: Envelope, _trusted: object) -> None:
        "\ud800".encode()

    monkeypatch.setattr(downlink_module, "verify_envelope", explode)
    topic = TOPICS.downlink(Downlink.OP)
    with pytest.raises(DownlinkRejected) as rejected:
        router.verifier.check(topic, valid(router.key, topic))
    assert (rejected.value.reason, rejected.value.detail) == (
        "forged",
        "unverifiable: UnicodeEncodeError",
    )


def test_anything_else_raised_while_checking_is_an_internal_error_rejection(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(_topic: str, _payload: bytes) -> Any:
        raise LookupError("a bug in a check")

    monkeypatch.setattr(router.verifier, "check", explode)
    assert router.deliver(TOPICS.downlink(Downlink.OP), b"{}") == "internal_error"
    assert router.router.stats.rejected == {"internal_error": 1}


@pytest.mark.parametrize(
    "error",
    [sqlite3.OperationalError("database or disk is full"), sqlite3.OperationalError("disk I/O")],
)
def test_only_the_store_failing_keeps_the_message_for_later(
    router: Router, error: sqlite3.Error
) -> None:
    topic = TOPICS.downlink(Downlink.PAY)
    payload = valid(router.key, topic)
    router.fail_with = error
    with pytest.raises(StoreUnavailable):
        router.deliver(topic, payload)
    assert router.router.stats.rejected == {} and router.inbox_ids() == []
    router.fail_with = None
    assert router.deliver(topic, payload) is None, "the same message applies once space returns"


# -- hypothesis: near-valid envelopes with poison injected, and raw bytes ------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


def quoted(raw: bytes) -> bytes:
    return b'"' + raw + b'"'


surrogate = st.integers(0xD800, 0xDFFF).map(lambda c: f'"\\u{c:04x}"'.encode())
poison_value = st.one_of(
    st.integers(33, 6000).map(lambda n: b"9" * n),
    st.integers(33, 6000).map(lambda n: b"-" + b"1" * n),
    st.integers(20, 400).map(lambda n: b"1." + b"0" * n + b"1"),
    st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400", b"1E+309"]),
    surrogate,
    st.integers(0xD800, 0xDFFF).map(lambda c: quoted(chr(c).encode("utf-8", "surrogatepass"))),
    st.integers(33, 3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(17, 600).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.binary(min_size=1, max_size=8).map(quoted),
)
DUPLICABLE = [b'"body":{}', b'"device":"k1"', b'"id":"dup-0000001"', b'"sig":"AAAA"', b'"v":1']


@st.composite
def near_valid(draw: st.DrawFn, key: Ed25519PrivateKey) -> tuple[str, bytes, bool]:
    """(topic, payload, untouched): a real envelope for that topic, then one poison."""
    topic = draw(st.sampled_from(EVERY_TOPIC))
    signer = draw(st.sampled_from(["trusted", "untrusted", "unsigned"]))
    envelope = make_envelope(
        type="op.reprint",
        device=audience_of(topic),
        seq=draw(st.integers(0, 2**63)),
        body=draw(st.dictionaries(st.text(max_size=6), json_values, max_size=3)),
        now=datetime.now(UTC),
        clock_synced=True,
        ttl=timedelta(minutes=5),
    )
    if signer != "unsigned":
        envelope = sign_envelope(
            envelope, key if signer == "trusted" else Ed25519PrivateKey.generate()
        )
    payload = envelope.to_bytes()
    how = draw(st.sampled_from(["none", "inject", "duplicate", "replace", "bytes", "truncate"]))
    if how == "inject":
        member = draw(st.sampled_from([b'"x":', b'"body":', b'"seq":'])) + draw(poison_value)
        payload = b'{"body":{' + member + b"," + payload[len(b'{"body":{') :]
    elif how == "duplicate":
        payload = payload[:-1] + b"," + draw(st.sampled_from(DUPLICABLE)) + b"}"
    elif how == "replace":
        field = draw(st.sampled_from([b'"seq":', b'"v":']))
        start = payload.index(field) + len(field)
        end = start
        while payload[end : end + 1].isdigit():
            end += 1
        payload = payload[:start] + draw(poison_value) + payload[end:]
    elif how == "bytes":
        at = draw(st.integers(0, len(payload) - 1))
        payload = payload[:at] + draw(st.binary(min_size=1, max_size=4)) + payload[at + 1 :]
    elif how == "truncate":
        payload = payload[: draw(st.integers(0, len(payload) - 1))]
    return topic, payload, how == "none" and signer == "trusted"


def test_near_valid_poison_and_raw_bytes_are_rejected_or_applied_never_raised() -> None:
    key = Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory() as tmp:
        harness = Router(Path(tmp), key)
        untouched_sent = 0
        try:

            @settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
            @given(
                sample=near_valid(key)
                | st.tuples(
                    st.sampled_from(EVERY_TOPIC),
                    st.binary(max_size=400) | json_values.map(lambda v: json.dumps(v).encode()),
                    st.just(False),
                )
            )
            def run(sample: tuple[str, bytes, bool]) -> None:
                nonlocal untouched_sent
                topic, payload, untouched = sample
                before = len(harness.applied)
                reason = harness.deliver(topic, payload)
                if untouched:
                    untouched_sent += 1
                    assert reason is None
                else:
                    assert reason in KNOWN_REASONS or reason is None, reason
                if reason is None:
                    # applied: then it really was a trusted, untouched envelope
                    [applied] = harness.applied[before:]
                    verify_envelope(applied, [key.public_key()])

            run()
            assert untouched_sent > 0, "the strategy also sends good messages"
            assert sum(harness.router.stats.rejected.values()) > 300
        finally:
            harness.close()
