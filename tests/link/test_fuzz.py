"""Fuzz: whatever arrives on a downlink topic, the pipeline rejects it or applies it, never
raises, and nothing unsigned ever reaches a handler."""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edged.contract.envelope import Envelope
from edged.contract.topics import DeviceTopics, Downlink
from edged.link.downlink import DownlinkDelivery, DownlinkRouter, DownlinkVerifier
from edged.store import Store, Transaction
from edged.store.inbox import Inbox
from tests.link.helpers import DEVICE, KNOWN_REASONS, SITE, FixedClock

TOPICS = DeviceTopics(SITE, DEVICE)
REFUSAL = re.compile(
    r"oversized: \d+ bytes > 1024"
    r"|malformed JSON: (JSONDecodeError|UnicodeDecodeError|nested \d+ deep > 32"
    r"|number of \d+ characters > 32|number out of range: \S+|duplicate key '.*'"
    r"|non-finite number -?\w+|invalid UTF-16: a lone surrogate escape)"
    r"|malformed: envelope is not a JSON object|malformed: [a-z_]+(\.\w+)*: \S.*"
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
envelope_like = st.fixed_dictionaries(
    {},
    optional={
        "v": st.sampled_from([1, 2, "1", None]),
        "id": st.text(max_size=70),
        "type": st.text(max_size=70),
        "device": st.sampled_from([DEVICE, "k2", "", f"{SITE}/_site", "_fleet"]),
        "seq": st.integers(min_value=-5, max_value=2**70),
        "ts": st.sampled_from(["2026-01-01T00:00:00Z", "yesterday", "2026-13-01T00:00:00"]),
        "clock_synced": json_values,
        "body": json_values,
        "exp": st.sampled_from(["2999-01-01T00:00:00Z", "1999-01-01T00:00:00Z", 5]),
        "sig": st.text(max_size=100),
        "extra": json_values,
    },
)
topics = st.sampled_from(
    [*TOPICS.subscriptions(), "edge/v1/s1/k2/cmd/pay", "edge/v1/s1/k1/cmd", "x"]
)
payloads = (
    st.binary(max_size=300)
    | envelope_like.map(lambda d: json.dumps(d).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
)


class Harness:
    """One store and router for the whole fuzz run; each example gets a fresh loop call."""

    def __init__(self, path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.key = Ed25519PrivateKey.generate()
        self.store: Store = self.loop.run_until_complete(Store.open(path / "fuzz.db", FixedClock()))
        verifier = DownlinkVerifier(
            TOPICS, [self.key.public_key()], FixedClock(), max_bytes=1024, max_clock_skew_s=60
        )
        self.router = DownlinkRouter(TOPICS, self.store, Inbox(self.store), verifier)
        self.applied = 0

        async def handler(_e: Envelope, _tx: Transaction, _d: DownlinkDelivery) -> None:
            self.applied += 1

        for kind in Downlink:
            self.router.register(kind, handler)

    def deliver(self, topic: str, payload: bytes) -> Any:
        return self.loop.run_until_complete(self.router.deliver(topic, payload))

    def close(self) -> None:
        self.loop.run_until_complete(self.store.close())
        self.loop.close()


def test_downlink_pipeline_never_crashes_and_applies_nothing_unsigned() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        harness = Harness(Path(tmp))
        try:

            @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
            @given(topic=topics, payload=payloads)
            def run(topic: str, payload: bytes) -> None:
                reason = harness.deliver(topic, payload)
                assert reason in KNOWN_REASONS, reason

            run()
            assert harness.applied == 0
            assert sum(harness.router.stats.rejected.values()) >= 400
        finally:
            harness.close()


@settings(max_examples=500, deadline=None)
@given(payload=payloads)
def test_envelope_codec_raises_only_envelope_error(payload: bytes) -> None:
    from edged.contract.envelope import EnvelopeError, decode_envelope

    try:
        envelope = decode_envelope(payload, max_bytes=1024)
    except EnvelopeError as exc:
        # A reason to log from the codec's fixed list, never empty and never None.
        [reason] = exc.args
        assert isinstance(reason, str)
        assert REFUSAL.fullmatch(reason), reason
        return
    # Whatever decodes re-encodes to an envelope that decodes to the same thing.
    assert decode_envelope(envelope.to_bytes(), max_bytes=10**6) == envelope
