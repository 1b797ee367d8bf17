"""Downlink verification: every bad message rejected with its reason and no effect."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edged.contract.envelope import Envelope
from edged.contract.topics import DeviceTopics, Downlink
from edged.link.downlink import (
    DownlinkDelivery,
    DownlinkRouter,
    DownlinkVerifier,
    HandlerRejected,
)
from edged.store import Store, Transaction
from edged.store.inbox import Inbox
from tests.link.helpers import DEVICE, SITE, FixedClock, signed_downlink

TOPICS = DeviceTopics(SITE, DEVICE)
OP_TOPIC = TOPICS.downlink(Downlink.OP)
MAX_BYTES = 4096


@dataclass
class Rig:
    store: Store
    router: DownlinkRouter
    clock: FixedClock
    key: Ed25519PrivateKey
    applied: list[str]

    async def effects(self) -> int:
        row = await self.store.fetchone("SELECT value FROM sequences WHERE name = 'effect'")
        return int(row[0]) if row else 0

    async def in_inbox(self, msg_id: str) -> bool:
        row = await self.store.fetchone("SELECT 1 FROM inbox WHERE msg_id = ?", (msg_id,))
        return row is not None


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = FixedClock()
    key = Ed25519PrivateKey.generate()
    store = await Store.open(tmp_path / "edged.db", clock)
    verifier = DownlinkVerifier(
        TOPICS, [key.public_key()], clock, max_bytes=MAX_BYTES, max_clock_skew_s=60
    )
    router = DownlinkRouter(TOPICS, store, Inbox(store), verifier)
    applied: list[str] = []

    async def effect(envelope: Envelope, tx: Transaction, _where: DownlinkDelivery) -> None:
        await tx.next_sequence("effect")
        applied.append(envelope.id)

    for kind in Downlink:
        router.register(kind, effect)
    yield Rig(store, router, clock, key, applied)
    await store.close()


async def test_a_valid_message_has_exactly_one_effect_even_when_redelivered(rig: Rig) -> None:
    payload = signed_downlink(rig.key)
    assert await rig.router.deliver(OP_TOPIC, payload) is None
    assert await rig.router.deliver(OP_TOPIC, payload) == "replayed"
    assert await rig.router.deliver(OP_TOPIC, payload, retained=True) == "replayed"
    assert await rig.effects() == 1
    assert rig.router.stats.accepted == 1
    assert rig.router.stats.rejected["replayed"] == 2


def _bad_messages(key: Ed25519PrivateKey) -> list[tuple[str, str, bytes]]:
    other = Ed25519PrivateKey.generate()
    now = datetime.now(UTC)
    good = json.loads(signed_downlink(key))
    good["body"] = {"n": 2}  # changed after signing
    return [
        ("forged", OP_TOPIC, signed_downlink(other)),
        ("forged", OP_TOPIC, json.dumps(good).encode()),
        ("unsigned", OP_TOPIC, signed_downlink(key, sign=False)),
        ("expired", OP_TOPIC, signed_downlink(key, now=now - timedelta(hours=1))),
        ("no_expiry", OP_TOPIC, signed_downlink(key, ttl=None)),
        ("oversized", OP_TOPIC, signed_downlink(key, body={"pad": "x" * MAX_BYTES})),
        ("malformed", OP_TOPIC, b"{not json"),
        ("malformed", OP_TOPIC, b"[1, 2, 3]"),
        ("malformed", OP_TOPIC, json.dumps({"v": 2, "id": "x"}).encode()),
        ("misaddressed", OP_TOPIC, signed_downlink(key, device="k2")),
        ("misaddressed", "edge/v1/s1/k2/cmd/op", signed_downlink(key)),
        ("misaddressed", "edge/v1/s1/k1/cmd/unknown", signed_downlink(key)),
        ("misaddressed", "edge/v1/s2/_site/cfg", signed_downlink(key, device="s2/_site")),
    ]


async def test_bad_messages_are_rejected_with_their_reason_and_have_no_effect(rig: Rig) -> None:
    for expected, topic, payload in _bad_messages(rig.key):
        reason = await rig.router.deliver(topic, payload)
        assert reason == expected, (expected, topic, payload[:80])
    assert await rig.effects() == 0
    assert rig.applied == []
    rows = await rig.store.fetchone("SELECT COUNT(*) FROM inbox")
    assert rows is not None and rows[0] == 0, "a rejected message must not be recorded"
    counts = rig.router.stats.rejected
    assert counts["forged"] == 2 and counts["malformed"] == 3 and counts["misaddressed"] == 4
    assert counts["unsigned"] == counts["expired"] == counts["oversized"] == 1


async def test_site_and_fleet_config_must_name_their_audience(rig: Rig) -> None:
    site_topic = f"edge/v1/{SITE}/_site/cfg"
    fleet_topic = "edge/v1/_fleet/cfg"
    assert await rig.router.deliver(site_topic, signed_downlink(rig.key, type="cfg.desired")) == (
        "misaddressed"
    )
    site = signed_downlink(rig.key, type="cfg.desired", device=f"{SITE}/_site")
    fleet = signed_downlink(rig.key, type="cfg.desired", device="_fleet")
    assert await rig.router.deliver(site_topic, site) is None
    assert await rig.router.deliver(fleet_topic, fleet) is None
    assert await rig.router.deliver(fleet_topic, site) == "misaddressed"


async def test_a_failing_handler_rolls_back_so_the_redelivery_applies(
    tmp_path: Path, rig: Rig
) -> None:
    del tmp_path
    calls = 0

    async def flaky(envelope: Envelope, tx: Transaction, _where: DownlinkDelivery) -> None:
        nonlocal calls
        calls += 1
        await tx.next_sequence("flaky")
        if calls == 1:
            raise RuntimeError("boom")
        if calls == 2:
            raise HandlerRejected("trade number unknown")

    router = DownlinkRouter(TOPICS, rig.store, Inbox(rig.store), rig.router._verifier)
    router.register(Downlink.PAY, flaky)
    topic = TOPICS.downlink(Downlink.PAY)
    payload = signed_downlink(rig.key, type="pay.result")
    assert await router.deliver(topic, payload) == "handler_error"
    assert await router.deliver(topic, payload) == "handler_rejected"
    assert await rig.store.fetchone("SELECT value FROM sequences WHERE name='flaky'") is None
    assert await router.deliver(topic, payload) is None
    row = await rig.store.fetchone("SELECT value FROM sequences WHERE name='flaky'")
    assert row is not None and row[0] == 1
    assert await router.deliver(topic, payload) == "replayed"


async def test_no_handler_means_no_claim(rig: Rig) -> None:
    router = DownlinkRouter(TOPICS, rig.store, Inbox(rig.store), rig.router._verifier)
    payload = signed_downlink(rig.key)
    assert await router.deliver(OP_TOPIC, payload) == "no_handler"
    assert not await rig.in_inbox(json.loads(payload)["id"])
    with pytest.raises(ValueError, match="already registered"):
        rig.router.register(Downlink.OP, lambda *_a: None)  # type: ignore[arg-type,return-value]


async def test_expiry_with_an_unsynced_clock_uses_the_newest_signed_time(rig: Rig) -> None:
    # The Pi booted with its clock in 1970 and NTP has not synced yet.
    rig.clock.current = datetime(1970, 1, 1, tzinfo=UTC)
    rig.clock.is_synced = False
    real_now = datetime.now(UTC)
    stale = signed_downlink(rig.key, now=real_now - timedelta(hours=2))
    # Nothing signed seen yet: expiry cannot be judged, signature and replay still hold.
    assert await rig.router.deliver(OP_TOPIC, signed_downlink(rig.key, sign=False)) == "unsigned"
    fresh = signed_downlink(rig.key, now=real_now)
    assert await rig.router.deliver(OP_TOPIC, fresh) is None
    # The fresh message proved the time is at least real_now: the stale one is expired.
    assert await rig.router.deliver(OP_TOPIC, stale) == "expired"
    # Within the skew tolerance (60 s here) a message is still accepted.
    slightly = signed_downlink(rig.key, now=real_now - timedelta(minutes=5, seconds=30))
    assert await rig.router.deliver(OP_TOPIC, slightly) is None


async def test_synced_clock_tolerates_skew_but_not_more(rig: Rig) -> None:
    now = rig.clock.now()
    within = signed_downlink(rig.key, now=now - timedelta(seconds=330))  # exp 30 s ago
    beyond = signed_downlink(rig.key, now=now - timedelta(seconds=400))  # exp 100 s ago
    assert await rig.router.deliver(OP_TOPIC, within) is None
    assert await rig.router.deliver(OP_TOPIC, beyond) == "expired"
