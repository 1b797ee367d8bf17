"""One dispatch table per downlink topic, keyed by envelope type and filled by each owner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edged.contract.envelope import Envelope
from edged.contract.topics import DeviceTopics, Downlink
from edged.link.downlink import DownlinkDelivery, DownlinkRouter, DownlinkVerifier
from edged.store import Store, Transaction
from edged.store.inbox import Inbox
from tests.link.helpers import DEVICE, SITE, FixedClock, signed_downlink

TOPICS = DeviceTopics(SITE, DEVICE)
KEY = Ed25519PrivateKey.generate()


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[tuple[DownlinkRouter, list[str]]]:
    clock = FixedClock()
    store = await Store.open(tmp_path / "edged.db", clock)
    verifier = DownlinkVerifier(
        TOPICS, [KEY.public_key()], clock, max_bytes=4096, max_clock_skew_s=60
    )
    router = DownlinkRouter(TOPICS, store, Inbox(store), verifier)
    seen: list[str] = []

    def handler(name: str):  # type: ignore[no-untyped-def]
        async def handle(envelope: Envelope, _tx: Transaction, _d: DownlinkDelivery) -> None:
            seen.append(f"{name}:{envelope.type}")

        return handle

    router.register(Downlink.PAY, handler("payments"))
    router.register_type(Downlink.PAY, "refund.result", handler("refunds"))
    router.register_type(Downlink.OP, "op.refund", handler("refunds"))
    yield router, seen
    await store.close()


async def test_each_type_goes_to_its_owner_and_the_rest_to_the_topic_handler(
    router: tuple[DownlinkRouter, list[str]],
) -> None:
    r, seen = router
    pay = TOPICS.downlink(Downlink.PAY)
    assert await r.deliver(pay, signed_downlink(KEY, type="refund.result")) is None
    assert await r.deliver(pay, signed_downlink(KEY, type="pay.result")) is None
    op = TOPICS.downlink(Downlink.OP)
    assert await r.deliver(op, signed_downlink(KEY, type="op.refund")) is None
    assert seen == ["refunds:refund.result", "payments:pay.result", "refunds:op.refund"]


async def test_an_unknown_type_is_refused_with_a_suggestion_and_no_effect(
    router: tuple[DownlinkRouter, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    r, seen = router
    reason = await r.deliver(TOPICS.downlink(Downlink.OP), signed_downlink(KEY, type="op.refnud"))
    assert reason == "no_handler"
    assert seen == []
    [record] = [rec for rec in caplog.records if rec.getMessage() == "downlink rejected"]
    assert record.detail == "nothing handles 'op.refnud' on cmd/op; did you mean 'op.refund'?"  # type: ignore[attr-defined]


async def test_a_second_handler_for_the_same_type_is_refused(
    router: tuple[DownlinkRouter, list[str]],
) -> None:
    r, _ = router

    async def other(_e: Envelope, _t: Transaction, _d: DownlinkDelivery) -> None:
        return None

    with pytest.raises(ValueError, match=r"refund\.result on cmd/pay is already registered"):
        r.register_type(Downlink.PAY, "refund.result", other)
