"""A shopper who gives up, and a close nobody answers: on a real store, as the backend sees it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edged.services.payments.protocol import PaymentOutcome
from edged.services.payments.states import MSG_CANCELLING
from tests.payments.harness import Harness, make_harness

CODE = "134567890123456789"
AMOUNT = 1250


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path)
    yield harness
    await harness.store.close()


async def reason_on_record(h: Harness, trade: str) -> str:
    return str(json.loads((await h.payment(trade))["detail"])["reason"])


async def micropay_in(h: Harness, state: str) -> tuple[str, str]:
    sale = await h.new_sale()
    trade = await h.service.pay_by_code(sale, AMOUNT, CODE)
    await h.link_delivers()  # the request left the kiosk (else giving up withdraws it)
    if state == "user_paying":
        await h.deliver(h.result({"trade_no": trade, "amount_fen": AMOUNT, "state": "USERPAYING"}))
    assert (await h.payment(trade))["state"] == state
    return sale, trade


@pytest.mark.parametrize("waiting", ["requested", "user_paying"])
async def test_a_shopper_cancelling_a_micropay_reverses_it_and_nothing_is_released(
    h: Harness, waiting: str
) -> None:
    sale, trade = await micropay_in(h, waiting)
    await h.service.cancel(sale)

    row = await h.payment(trade)
    assert row["state"] == "reversing"
    assert await reason_on_record(h, trade) == "shopper_cancelled"
    assert [r["body"] for r in await h.sent("pay.reverse")] == [
        {"trade_no": trade, "reason": "shopper_cancelled", "attempt": 1}
    ]
    assert h.sink.shown[-1] == (sale, MSG_CANCELLING)
    assert h.sink.settled == [] and h.service.busy()

    await h.service.cancel(sale)  # pressing cancel again sends nothing more
    assert len(await h.sent("pay.reverse")) == 1

    await h.deliver(h.result({"trade_no": trade, "amount_fen": AMOUNT, "state": "REVERSED"}))
    [settled] = h.sink.settled
    assert (settled.outcome, settled.reason, settled.sale_id) == (
        PaymentOutcome.FAILED,
        "payment reversed",
        sale,
    )
    assert (await h.payment(trade))["state"] == "reversed"
    assert await reason_on_record(h, trade) == "payment reversed"
    assert not h.service.busy()


async def test_cancel_while_already_reversing_keeps_the_deadline_reason(h: Harness) -> None:
    sale, trade = await micropay_in(h, "requested")
    h.clock.advance(10)  # the 10 s deadline
    await h.service.tick()
    assert await reason_on_record(h, trade) == "deadline"
    await h.service.cancel(sale)
    assert [r["body"]["reason"] for r in await h.sent("pay.reverse")] == ["deadline"]
    assert await reason_on_record(h, trade) == "deadline"


async def test_a_declined_micropay_records_the_banks_reason(h: Harness) -> None:
    _, trade = await micropay_in(h, "requested")
    body = {"trade_no": trade, "amount_fen": AMOUNT, "state": "FAILED", "reason": "frozen"}
    await h.deliver(h.result(body))
    assert (await h.payment(trade))["state"] == "failed"
    assert await reason_on_record(h, trade) == "frozen"
    assert [s.reason for s in h.sink.settled] == ["frozen"]


async def test_a_close_nobody_answers_is_sent_again_until_the_backend_confirms(
    tmp_path: Path,
) -> None:
    # Before the reverse timeout parks it (tests/payments/test_in_doubt.py): the kiosk waits.
    h = await make_harness(tmp_path, reverse_timeout_s=1000)
    try:
        await _close_nobody_answers(h)
    finally:
        await h.store.close()


async def _close_nobody_answers(h: Harness) -> None:
    sale = await h.new_sale()
    qr = await h.service.pay_by_qr(sale, 880)
    await h.link_delivers()
    await h.service.cancel(sale)
    assert (await h.payment(qr.trade_no))["state"] == "closing"
    assert await reason_on_record(h, qr.trade_no) == "shopper_cancelled"

    for _ in range(3):  # delivered each time, never answered
        await h.link_delivers()
        h.clock.advance(30)  # past the longest retry delay
        await h.service.tick()
    closes = [c["body"] for c in await h.sent("pay.close")]
    assert closes == [
        {"trade_no": qr.trade_no, "reason": "shopper_cancelled", "attempt": n} for n in (1, 2, 3, 4)
    ]
    assert (await h.payment(qr.trade_no))["state"] == "closing"
    assert h.service.busy() and h.sink.settled == []

    h.clock.advance(30)  # the link is down now: the queued close is enough, no fifth one
    await h.service.tick()
    assert len(await h.sent("pay.close")) == 4

    await h.deliver(h.result({"trade_no": qr.trade_no, "amount_fen": 880, "state": "CLOSED"}))
    assert [(s.outcome, s.reason) for s in h.sink.settled] == [
        (PaymentOutcome.CANCELLED, "order closed")
    ]
    assert await reason_on_record(h, qr.trade_no) == "order closed"
    assert not h.service.busy()


async def test_an_expired_qr_records_why_it_closed(h: Harness) -> None:
    sale = await h.new_sale()
    qr = await h.service.pay_by_qr(sale, 880)
    await h.link_delivers()
    h.clock.advance(31)
    await h.service.tick()
    assert (await h.payment(qr.trade_no))["state"] == "closing"
    assert await reason_on_record(h, qr.trade_no) == "expired"
    assert [c["body"]["reason"] for c in await h.sent("pay.close")] == ["expired"]
