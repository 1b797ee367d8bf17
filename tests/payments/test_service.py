"""The payment state machines on a real store: what the shopper and the backend see at each step."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edged.contract.bodies import SealedCode
from edged.services.payments.protocol import PaymentOutcome
from edged.services.payments.sealing import open_code
from edged.services.payments.service import PaymentRejected
from edged.services.payments.states import MSG_CONFIRM_ON_PHONE, MSG_QR_EXPIRED, MSG_REVERSING
from tests.payments.harness import Harness, make_harness
from tests.support.polling import until

CODE = "134567890123456789"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path)
    yield harness
    await harness.store.close()


async def start_micropay(h: Harness, amount: int = 1250) -> str:
    sale = await h.new_sale()
    return await h.service.pay_by_code(sale, amount, CODE)


async def test_micropay_sends_the_sealed_code_and_stores_no_code(h: Harness) -> None:
    trade = await start_micropay(h)
    [request] = await h.sent()
    assert request["type"] == "pay.micropay"
    body = request["body"]
    assert body["trade_no"] == trade and body["amount_fen"] == 1250 and body["method"] == "wechat"
    assert open_code(SealedCode(**body["sealed_code"]), trade, h.backend) == CODE
    assert (await h.payment(trade))["state"] == "requested"
    assert h.service.busy()
    raw = b"".join(p.read_bytes() for p in h.store.path.parent.glob("edged.db*"))
    assert CODE.encode() not in raw


async def test_success_for_the_exact_trade_and_amount_settles_once(h: Harness) -> None:
    trade = await start_micropay(h)
    success = {"trade_no": trade, "amount_fen": 1250, "state": "SUCCESS", "transaction_id": "wx1"}
    await h.deliver(h.result(success))
    await h.deliver(h.result(success))
    assert [s.outcome for s in h.sink.settled] == [PaymentOutcome.PAID]
    row = await h.payment(trade)
    assert row["state"] == "paid" and row["transaction_id"] == "wx1"
    assert not h.service.busy()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount_fen": 1}, "amount does not match the trade"),
        ({"trade_no": "0" * 32}, "unknown trade number"),
        ({"amount_fen": 1250.0}, "malformed body"),
        ({"state": "PAID_MAYBE"}, "malformed body"),
    ],
)
async def test_a_success_that_does_not_match_releases_nothing(
    h: Harness, change: dict[str, object], reason: str
) -> None:
    trade = await start_micropay(h)
    body = {"trade_no": trade, "amount_fen": 1250, "state": "SUCCESS", **change}
    await h.deliver(h.result(body))
    assert h.sink.settled == []
    assert (await h.payment(trade))["state"] == "requested"
    assert h.service.rejected[reason] == 1


async def test_decline_sends_the_sale_back(h: Harness) -> None:
    trade = await start_micropay(h)
    await h.deliver(
        h.result(
            {
                "trade_no": trade,
                "amount_fen": 1250,
                "state": "FAILED",
                "reason": "insufficient funds",
            }
        )
    )
    [settled] = h.sink.settled
    assert settled.outcome is PaymentOutcome.FAILED and settled.reason == "insufficient funds"
    assert (await h.payment(trade))["state"] == "failed"


async def test_user_paying_queries_then_success(h: Harness) -> None:
    trade = await start_micropay(h)
    await h.deliver(h.result({"trade_no": trade, "amount_fen": 1250, "state": "USERPAYING"}))
    assert h.sink.shown[-1][1] == MSG_CONFIRM_ON_PHONE
    for _ in range(2):
        await h.link_delivers()
        h.clock.advance(2)
        await h.service.tick()
    queries = await h.sent("pay.query")
    assert [q["body"]["attempt"] for q in queries] == [1, 2]
    assert all(q["body"]["trade_no"] == trade for q in queries)
    await h.deliver(h.result({"trade_no": trade, "amount_fen": 1250, "state": "SUCCESS"}))
    assert [s.outcome for s in h.sink.settled] == [PaymentOutcome.PAID]


async def test_while_the_link_is_down_one_query_waits_in_the_outbox_not_hundreds(
    h: Harness,
) -> None:
    await start_micropay(h)
    await h.link_delivers()
    for _ in range(4):
        h.clock.advance(2)
        await h.service.tick()
    assert len(await h.sent("pay.query")) == 1
    h.clock.advance(10)
    await h.service.tick()
    assert len(await h.sent("pay.reverse")) == 1  # the deadline still reverses at once


async def test_past_the_deadline_the_kiosk_reverses_and_retries_with_the_same_trade(
    h: Harness,
) -> None:
    trade = await start_micropay(h)
    await h.deliver(h.result({"trade_no": trade, "amount_fen": 1250, "state": "USERPAYING"}))
    h.clock.advance(10)
    await h.service.tick()
    assert (await h.payment(trade))["state"] == "reversing"
    assert h.sink.shown[-1][1] == MSG_REVERSING
    await h.link_delivers()
    h.clock.advance(30)
    await h.service.tick()
    reverses = await h.sent("pay.reverse")
    assert [r["body"] for r in reverses] == [
        {"trade_no": trade, "reason": "deadline", "attempt": 1},
        {"trade_no": trade, "reason": "deadline", "attempt": 2},
    ]
    assert h.service.busy() and h.sink.settled == []
    await h.deliver(h.result({"trade_no": trade, "amount_fen": 1250, "state": "REVERSED"}))
    assert [s.outcome for s in h.sink.settled] == [PaymentOutcome.FAILED]
    assert (await h.payment(trade))["state"] == "reversed"
    assert not h.service.busy()


async def test_shopper_paid_just_before_the_reverse_means_paid(h: Harness) -> None:
    trade = await start_micropay(h)
    await h.link_delivers()
    h.clock.advance(11)
    await h.service.tick()
    assert (await h.payment(trade))["state"] == "reversing"
    await h.deliver(h.result({"trade_no": trade, "amount_fen": 1250, "state": "SUCCESS"}))
    await h.deliver(h.result({"trade_no": trade, "amount_fen": 1250, "state": "REVERSED"}))
    assert [s.outcome for s in h.sink.settled] == [PaymentOutcome.PAID]
    assert (await h.payment(trade))["state"] == "paid"


async def test_unknown_result_reverses_at_once(h: Harness) -> None:
    trade = await start_micropay(h)
    await h.deliver(h.result({"trade_no": trade, "amount_fen": 1250, "state": "UNKNOWN"}))
    [reverse] = await h.sent("pay.reverse")
    assert reverse["body"]["reason"] == "unknown_result"


async def test_bad_requests_are_refused_with_no_effect(h: Harness) -> None:
    sale = await h.new_sale()
    for code, amount, message in [
        ("6901234567892", 100, "not a WeChat Pay or Alipay"),
        (CODE, 0, "positive whole number"),
        (CODE, 2_000_000, "above the limit"),
    ]:
        with pytest.raises(PaymentRejected, match=message):
            await h.service.pay_by_code(sale, amount, code)
    assert await h.sent() == []
    await h.service.pay_by_code(sale, 100, CODE)
    with pytest.raises(PaymentRejected, match="still being resolved"):
        await h.service.pay_by_code(sale, 100, CODE)


async def test_native_qr_registers_a_short_code_and_cancels_on_expiry(h: Harness) -> None:
    sale = await h.new_sale()
    qr = await h.service.pay_by_qr(sale, 880)
    assert 4 <= len(qr.qr_data) <= 32
    [create] = await h.sent()
    await h.link_delivers()
    assert create["type"] == "pay.native_create"
    assert create["body"]["session"] == qr.qr_data
    h.clock.advance(31)
    await h.service.tick()
    assert h.sink.shown[-1][1] == MSG_QR_EXPIRED
    [close] = await h.sent("pay.close")
    assert close["body"]["reason"] == "expired"
    await h.deliver(h.result({"trade_no": qr.trade_no, "amount_fen": 880, "state": "CLOSED"}))
    assert [s.outcome for s in h.sink.settled] == [PaymentOutcome.CANCELLED]


async def test_native_qr_paid_completes(h: Harness) -> None:
    sale = await h.new_sale()
    qr = await h.service.pay_by_qr(sale, 880)
    await h.deliver(h.result({"trade_no": qr.trade_no, "amount_fen": 880, "state": "SUCCESS"}))
    assert [s.outcome for s in h.sink.settled] == [PaymentOutcome.PAID]


async def test_shopper_cancel_closes_the_native_order(h: Harness) -> None:
    sale = await h.new_sale()
    qr = await h.service.pay_by_qr(sale, 880)
    await h.link_delivers()
    await h.service.cancel(sale)
    [close] = await h.sent("pay.close")
    assert close["body"] == {"trade_no": qr.trade_no, "reason": "shopper_cancelled", "attempt": 1}
    assert h.service.busy()


async def test_recover_queries_open_payments_and_waits_for_their_end(tmp_path: Path) -> None:
    first = await make_harness(tmp_path)
    trade = await start_micropay(first)
    await first.store.close()

    again = await make_harness(tmp_path)
    try:
        assert again.service.busy()
        await again.link_delivers()
        import asyncio

        engine = asyncio.create_task(again.service.run())
        recovering = asyncio.create_task(again.service.recover())

        async def queried() -> bool:
            return bool(await again.sent("pay.query"))

        await until(queried, what="the recovery query")
        assert [q["body"]["trade_no"] for q in await again.sent("pay.query")] == [trade]
        assert not recovering.done()  # still waiting for the answer
        await again.deliver(
            again.result({"trade_no": trade, "amount_fen": 1250, "state": "SUCCESS"})
        )
        await asyncio.wait_for(recovering, 2)
        assert not again.service.busy()
        engine.cancel()
    finally:
        await again.store.close()


async def test_a_success_after_a_decline_releases_nothing(h: Harness) -> None:
    trade = await start_micropay(h)
    await h.deliver(h.result({"trade_no": trade, "amount_fen": 1250, "state": "FAILED"}))
    await h.deliver(h.result({"trade_no": trade, "amount_fen": 1250, "state": "SUCCESS"}))
    assert [s.outcome for s in h.sink.settled] == [PaymentOutcome.FAILED]
    assert (await h.payment(trade))["state"] == "failed"
