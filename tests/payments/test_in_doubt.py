"""A payment in doubt never strands the kiosk: parked past the reverse timeout, resolved in the
background, withdrawn when its request never left, ended by the backend's NOT_FOUND.

On a real store, with the harness's clock and recording ledger; what the backend would
receive is read from the outbox."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edged.services.payments.protocol import PaymentOutcome
from edged.services.payments.states import WITHDRAWN_REASON
from tests.payments.harness import Harness, make_harness

CODE = "134567890123456789"
AMOUNT = 1250
REVERSE_TIMEOUT_S = 20


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, reverse_timeout_s=REVERSE_TIMEOUT_S)
    yield harness
    await harness.store.close()


async def reversing(h: Harness, sale: str = "sale-1") -> str:
    """A micropay whose request reached the backend, past its deadline: reversing."""
    await h.new_sale(sale)
    trade = await h.service.pay_by_code(sale, AMOUNT, CODE)
    await h.link_delivers()
    h.clock.advance(10)  # the 10 s deadline
    await h.service.tick()
    assert (await h.payment(trade))["state"] == "reversing"
    return trade


async def settle_tasks(h: Harness) -> None:
    for task in list(h.service._tasks):
        await task


async def doubts(h: Harness) -> list[dict[str, Any]]:
    return [m["body"] for m in await h.sent("pay.doubt")]


def result(h: Harness, trade: str, state: str, **extra: Any) -> Any:
    return h.result({"trade_no": trade, "amount_fen": AMOUNT, "state": state, **extra})


async def test_an_unconfirmed_reverse_parks_the_sale_and_frees_the_kiosk(h: Harness) -> None:
    trade = await reversing(h)
    for _ in range(3):  # delivered, never answered, until the reverse timeout
        await h.link_delivers()
        h.clock.advance(REVERSE_TIMEOUT_S / 2)
        await h.service.tick()

    row = await h.payment(trade)
    assert row["state"] == "in_doubt"
    assert [(s.outcome, s.sale_id) for s in h.sink.settled] == [
        (PaymentOutcome.IN_DOUBT, "sale-1")
    ], "the sale is parked once: not paid, nothing released"
    assert not h.service.busy(), "the kiosk takes the next shopper"
    [parked] = await doubts(h)
    assert parked == {
        "trade_no": trade,
        "sale_id": "sale-1",
        "method": "wechat",
        "amount_fen": AMOUNT,
        "state": "in_doubt",
        "reason": "cancel unconfirmed",
        "transaction_id": "",
        "refund_due": False,
    }
    status = await h.service.status()
    assert status["open"] == [] and [p["trade_no"] for p in status["in_doubt"]] == [trade]

    # the next shopper pays while the parked trade is still being resolved
    await h.new_sale("sale-2")
    await h.service.pay_by_code("sale-2", 300, CODE)
    assert h.service.busy()


async def test_a_parked_trade_keeps_being_reversed_with_back_off_until_it_ends(
    h: Harness,
) -> None:
    trade = await reversing(h)
    h.clock.advance(REVERSE_TIMEOUT_S)
    await h.service.tick()
    assert (await h.payment(trade))["state"] == "in_doubt"
    sent_at: list[float] = []
    for _ in range(40):  # 40 minutes of a backend that never answers
        await h.link_delivers()
        h.clock.advance(60)
        before = len(await h.sent("pay.reverse"))
        await h.service.tick()
        if len(await h.sent("pay.reverse")) > before:
            sent_at.append(h.clock.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    assert gaps == sorted(gaps) and max(gaps) == 300, gaps  # backs off to 5 minutes
    reverses = [r["body"] for r in await h.sent("pay.reverse")]
    assert {r["reason"] for r in reverses} == {"deadline"}, "the cancel keeps its reason"
    assert [r["attempt"] for r in reverses] == list(range(1, len(reverses) + 1))

    await h.deliver(result(h, trade, "REVERSED"))
    assert (await h.payment(trade))["state"] == "reversed"
    assert [s.outcome for s in h.sink.settled] == [PaymentOutcome.IN_DOUBT], "settled once"
    assert [d["state"] for d in await doubts(h)] == ["in_doubt", "reversed"]
    assert (await h.service.status())["in_doubt"] == []
    h.clock.advance(600)
    count = len(await h.sent("pay.reverse"))
    await h.service.tick()
    assert len(await h.sent("pay.reverse")) == count, "nothing more is sent once it ended"


async def test_a_late_success_for_a_parked_trade_is_recorded_for_refund_and_releases_nothing(
    h: Harness,
) -> None:
    trade = await reversing(h)
    h.clock.advance(REVERSE_TIMEOUT_S)
    await h.service.tick()
    await h.deliver(result(h, trade, "SUCCESS", transaction_id="wx-late-1"))

    row = await h.payment(trade)
    assert (row["state"], row["transaction_id"]) == ("paid_late", "wx-late-1")
    assert PaymentOutcome.PAID not in [s.outcome for s in h.sink.settled]
    late = (await doubts(h))[-1]
    assert (late["state"], late["refund_due"], late["transaction_id"]) == (
        "paid_late",
        True,
        "wx-late-1",
    )
    status = await h.service.status()
    assert [r["trade_no"] for r in status["refund_due"]] == [trade]
    assert status["in_doubt"] == []


async def test_staff_cancelling_an_unconfirmed_reverse_parks_it_at_once(h: Harness) -> None:
    trade = await reversing(h)
    await h.service.cancel("sale-1")  # pressed again at once: the same press
    assert (await h.payment(trade))["state"] == "reversing" and h.service.busy()
    h.clock.advance(6)
    await h.service.cancel("sale-1")  # `edged cart cancel` a while later
    assert (await h.payment(trade))["state"] == "in_doubt"
    assert [s.outcome for s in h.sink.settled] == [PaymentOutcome.IN_DOUBT]
    assert not h.service.busy()


async def test_a_request_that_never_left_is_withdrawn_at_the_deadline(h: Harness) -> None:
    await h.new_sale()
    trade = await h.service.pay_by_code("sale-1", AMOUNT, CODE)  # the link is down
    h.clock.advance(10)
    await h.service.tick()

    assert (await h.payment(trade))["state"] == "withdrawn"
    assert await h.sent() == [], "the micropay is gone from the outbox and no reverse follows"
    assert [(s.outcome, s.reason) for s in h.sink.settled] == [
        (PaymentOutcome.FAILED, WITHDRAWN_REASON)
    ]
    assert not h.service.busy()


async def test_a_request_handed_to_the_broker_is_reversed_not_withdrawn(h: Harness) -> None:
    await h.new_sale()
    trade = await h.service.pay_by_code("sale-1", AMOUNT, CODE)
    [row] = await h.store.fetchall("SELECT seq FROM outbox")
    assert h.service._outbox.hand_out(row["seq"])  # the pump published it; no PUBACK yet
    h.clock.advance(10)
    await h.service.tick()
    assert (await h.payment(trade))["state"] == "reversing"
    assert [m["type"] for m in await h.sent()] == ["pay.micropay", "pay.reverse"]


async def test_a_request_from_before_a_restart_is_reversed_not_withdrawn(tmp_path: Path) -> None:
    first = await make_harness(tmp_path)
    await first.new_sale()
    trade = await first.service.pay_by_code("sale-1", AMOUNT, CODE)
    await first.store.close()  # it may have been published before the crash

    again = await make_harness(tmp_path)
    try:
        again.clock.advance(10)
        await again.service.tick()
        assert (await again.payment(trade))["state"] == "reversing"
    finally:
        await again.store.close()


async def test_a_withdrawn_row_the_pump_already_read_is_skipped(h: Harness) -> None:
    await h.new_sale()
    await h.service.pay_by_code("sale-1", AMOUNT, CODE)
    [row] = await h.store.fetchall("SELECT seq FROM outbox")  # the pump's page
    h.clock.advance(10)
    await h.service.tick()  # withdrawn
    assert not h.service._outbox.hand_out(row["seq"]), "the pump must not publish it"


async def test_not_found_to_a_reverse_ends_the_payment_unpaid(h: Harness) -> None:
    trade = await reversing(h)
    await h.deliver(h.result({"trade_no": trade, "state": "NOT_FOUND"}))
    assert (await h.payment(trade))["state"] == "reversed"
    assert [(s.outcome, s.reason) for s in h.sink.settled] == [
        (PaymentOutcome.FAILED, "unknown to the backend")
    ]


async def test_not_found_to_a_query_changes_nothing(h: Harness) -> None:
    await h.new_sale()
    trade = await h.service.pay_by_code("sale-1", AMOUNT, CODE)
    await h.deliver(h.result({"trade_no": trade, "state": "NOT_FOUND"}))
    assert (await h.payment(trade))["state"] == "requested" and h.sink.settled == []
    # a NOT_FOUND naming another amount is not for this trade
    await h.deliver(h.result({"trade_no": trade, "state": "NOT_FOUND", "amount_fen": 1}))
    assert h.service.rejected["amount does not match the trade"] == 1


async def test_recovery_after_a_restart_does_not_wait_for_parked_trades(tmp_path: Path) -> None:
    first = await make_harness(tmp_path, reverse_timeout_s=REVERSE_TIMEOUT_S)
    trade = await reversing(first)
    first.clock.advance(REVERSE_TIMEOUT_S)
    await first.service.tick()
    await first.store.close()

    again = await make_harness(tmp_path)
    try:
        assert not again.service.busy()
        await asyncio.wait_for(again.service.recover(), 2)
        assert (await again.payment(trade))["state"] == "in_doubt"
    finally:
        await again.store.close()
