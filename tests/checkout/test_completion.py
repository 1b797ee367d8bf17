"""Paying and completing: the sale, stock, evt/txn and the receipt job commit as one fact."""

from __future__ import annotations

import json

import pytest

from edged.services.checkout import messages as M
from edged.services.checkout.service import Phase
from edged.services.payments.protocol import PaymentOutcome
from edged.services.sales.completion import SettlementRejected
from tests.checkout.conftest import (
    ALIPAY_CODE,
    COLA,
    WATER,
    WECHAT_CODE,
    Kiosk,
    KioskFactory,
    eventually,
)


async def basket_of_three(kiosk: Kiosk) -> str:
    await kiosk.scan(WATER)
    await kiosk.scan(WATER)
    await kiosk.scan(COLA)
    assert kiosk.checkout.sale is not None
    return kiosk.checkout.sale.id


async def facts(kiosk: Kiosk) -> dict[str, object]:
    """Everything a paid sale changes, read from committed data only."""
    sale = await kiosk.store.fetchone("SELECT state, total_fen FROM sales")
    stock = await kiosk.store.fetchall(
        "SELECT barcode, quantity FROM stock WHERE barcode IN (?, ?)", (WATER, COLA)
    )
    txn = await kiosk.store.fetchall(
        "SELECT topic, payload FROM outbox WHERE topic LIKE '%evt/txn'"
    )
    jobs = await kiosk.store.fetchall("SELECT kind, state FROM print_jobs")
    return {
        "sale": tuple(sale) if sale else None,
        "stock": dict((r["barcode"], r["quantity"]) for r in stock),
        "txn": [json.loads(r["payload"]) for r in txn],
        "jobs": [tuple(r) for r in jobs],
    }


async def test_micropay_success_completes_everything_in_one_commit(
    make_kiosk: KioskFactory,
) -> None:
    kiosk = await make_kiosk(printing=False)
    sale_id = await basket_of_three(kiosk)

    await kiosk.scan(WECHAT_CODE, source="camera")
    assert kiosk.checkout.phase is Phase.PAYING
    assert kiosk.headline == "正在支付 微信支付 Paying…"
    assert kiosk.payments.codes_seen == 1
    trade_no = kiosk.payments.trade_for(sale_id)
    await kiosk.payments.say(sale_id, "请在手机上确认支付 Confirm on your phone")
    assert kiosk.headline == "请在手机上确认支付 Confirm on your phone"

    await kiosk.scan(WATER)  # a scan while paying changes nothing
    assert kiosk.headline == M.PAYMENT_IN_PROGRESS

    await kiosk.payments.finish(trade_no, PaymentOutcome.PAID)
    await eventually(lambda: _phase(kiosk, Phase.PAID))
    assert kiosk.headline == "支付成功 谢谢惠顾 Thank you"
    assert kiosk.display.current is not None
    assert kiosk.display.current.amount == "已付 ¥7.50"

    got = await facts(kiosk)
    assert got["sale"] == ("paid", 750)
    assert got["stock"] == {WATER: 118, COLA: 95}
    assert got["jobs"] == [("receipt", "queued")]
    paid_by = await kiosk.store.fetchone("SELECT paid_trade_no FROM sales WHERE id = ?", (sale_id,))
    assert paid_by is not None and paid_by[0] == trade_no, "the sale names the trade that paid it"
    [txn] = got["txn"]  # type: ignore[misc]
    assert txn["type"] == "txn.completed"
    body = txn["body"]
    assert body["sale_id"] == sale_id
    assert body["totals"] == {"items": 3, "total_fen": 750}
    assert body["payments"] == [{"trade_no": trade_no, "method": "wechat", "amount_fen": 750}]
    assert [(line["barcode"], line["quantity"], line["amount_fen"]) for line in body["lines"]] == [
        (WATER, 2, 400),
        (COLA, 1, 350),
    ]
    assert body["clock_synced"] is True
    # The payment code was handed to payments and nowhere else.
    dump = await kiosk.store.fetchall("SELECT * FROM outbox")
    assert WECHAT_CODE not in repr([bytes(r["payload"]) for r in dump])
    assert WECHAT_CODE not in json.dumps(await kiosk.checkout.status(), default=str)


async def test_a_failure_inside_settle_rolls_everything_back(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk(printing=False)
    sale_id = await basket_of_three(kiosk)
    await kiosk.scan(ALIPAY_CODE)
    trade_no = kiosk.payments.trade_for(sale_id)
    before = await facts(kiosk)

    # A SUCCESS for a different amount must not release the goods: settle raises, and the
    # payment's own final state rolls back with the sale, stock, outbox and print job.
    with pytest.raises(SettlementRejected, match="750 fen"):
        await kiosk.payments.finish(trade_no, PaymentOutcome.PAID, amount_fen=700)
    assert await facts(kiosk) == before
    row = await kiosk.store.fetchone("SELECT state FROM payments WHERE trade_no = ?", (trade_no,))
    assert row is not None and row["state"] == "requested"
    assert kiosk.checkout.phase is Phase.PAYING

    # Whatever breaks half-way (here: the outbox insert), nothing of the fact is left.
    def broken_write(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk I/O error")

    kiosk.outbox.write = broken_write  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="disk I/O error"):
        await kiosk.payments.finish(trade_no, PaymentOutcome.PAID)
    assert await facts(kiosk) == before
    assert kiosk.checkout.phase is Phase.PAYING
    assert kiosk.headline != "支付成功 谢谢惠顾 Thank you"


async def test_declined_payment_returns_to_the_basket(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk(printing=False)
    sale_id = await basket_of_three(kiosk)
    await kiosk.scan(WECHAT_CODE)
    await kiosk.payments.finish(
        kiosk.payments.trade_for(sale_id), PaymentOutcome.FAILED, "余额不足"
    )
    await eventually(lambda: _phase(kiosk, Phase.BASKET))
    assert kiosk.headline == "支付未完成 Payment not completed: 余额不足"
    got = await facts(kiosk)
    assert got["sale"] == ("basket", 750)
    assert got["stock"] == {WATER: 120, COLA: 96}
    assert got["txn"] == [] and got["jobs"] == []

    await kiosk.checkout.void_line(2)  # the basket can change again, then be paid
    await kiosk.scan(WECHAT_CODE)
    await kiosk.payments.finish(kiosk.payments.trade_for(sale_id), PaymentOutcome.PAID)
    await eventually(lambda: _phase(kiosk, Phase.PAID))
    assert (await facts(kiosk))["sale"] == ("paid", 400)


async def test_duplicate_success_completes_once(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk(printing=False)
    sale_id = await basket_of_three(kiosk)
    await kiosk.scan(WECHAT_CODE)
    trade_no = kiosk.payments.trade_for(sale_id)
    payment = kiosk.payments.open[trade_no]
    await kiosk.payments.finish(trade_no, PaymentOutcome.PAID)
    kiosk.payments.open[trade_no] = payment  # the same SUCCESS applied again
    await kiosk.payments.finish(trade_no, PaymentOutcome.PAID)
    got = await facts(kiosk)
    assert len(got["txn"]) == 1  # type: ignore[arg-type]
    assert got["jobs"] == [("receipt", "queued")]
    assert got["stock"] == {WATER: 118, COLA: 95}


async def test_native_qr_shows_the_code_and_cancel_closes_it(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk(printing=False)
    sale_id = await basket_of_three(kiosk)
    qr = await kiosk.checkout.pay_by_qr()
    view = kiosk.display.current
    assert view is not None
    assert view.headline == "请用小程序扫码支付 Scan to pay"
    assert view.qr == qr.qr_data and len(qr.qr_data) <= 32
    assert view.lines[0].startswith("有效期至")

    assert await kiosk.checkout.cancel() == "cancelling"
    assert kiosk.payments.cancelled == [sale_id]
    await eventually(lambda: _phase(kiosk, Phase.IDLE))
    assert kiosk.display.current is not None
    assert kiosk.display.current.lines[0] == "已取消 Sale cancelled"
    assert (await facts(kiosk))["sale"] == ("cancelled", 750)


async def test_native_qr_paid(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk(printing=False)
    sale_id = await basket_of_three(kiosk)
    qr = await kiosk.checkout.pay_by_qr()
    await kiosk.payments.finish(qr.trade_no, PaymentOutcome.PAID)
    await eventually(lambda: _phase(kiosk, Phase.PAID))
    [txn] = (await facts(kiosk))["txn"]  # type: ignore[misc]
    assert txn["body"]["payments"][0]["method"] == "native_qr"
    assert txn["body"]["sale_id"] == sale_id


async def test_payments_refusing_to_start_leaves_the_basket(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk(printing=False)
    await basket_of_three(kiosk)
    kiosk.payments.refuse = True
    await kiosk.scan(WECHAT_CODE)
    assert kiosk.checkout.phase is Phase.BASKET
    assert kiosk.headline == M.PAYMENT_NOT_STARTED
    assert (await facts(kiosk))["sale"] == ("basket", 750)


async def test_restart_while_paying_recovers_before_a_new_sale(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk(printing=False)
    sale_id = await basket_of_three(kiosk)
    await kiosk.scan(WECHAT_CODE)
    await kiosk.stop()  # crash while the shopper confirms on the phone

    again = await make_kiosk(printing=False)  # recovery resolves it (here: reversed)
    assert again.payments.recovered
    await eventually(lambda: _phase(again, Phase.BASKET))
    assert (await facts(again))["sale"] == ("basket", 750)
    assert again.checkout.sale is not None and again.checkout.sale.id == sale_id


async def test_sale_left_paying_without_a_payment_goes_back_to_the_basket(
    make_kiosk: KioskFactory,
) -> None:
    kiosk = await make_kiosk(printing=False)
    await basket_of_three(kiosk)
    async with kiosk.store.transaction() as tx:  # crash after "paying", before payments heard
        await tx.execute("UPDATE sales SET state = 'paying'")
    await kiosk.stop()
    again = await make_kiosk(printing=False)
    await eventually(lambda: _phase(again, Phase.BASKET))
    assert again.headline == "支付未完成 Payment not completed"


async def _phase(kiosk: Kiosk, phase: Phase) -> bool:
    return kiosk.checkout.phase is phase


async def test_a_sale_becomes_paid_only_with_the_trade_that_paid_it(
    make_kiosk: KioskFactory,
) -> None:
    from edged.services.sales.records import SaleState, move_now

    kiosk = await make_kiosk(printing=False)
    sale_id = await basket_of_three(kiosk)
    with pytest.raises(ValueError, match="paid by exactly one trade"):
        async with kiosk.store.transaction() as tx:
            await tx.run(
                lambda s: move_now(s, sale_id, SaleState.PAID, only_from=(SaleState.BASKET,))
            )
    with pytest.raises(ValueError, match="paid by exactly one trade"):
        async with kiosk.store.transaction() as tx:
            await tx.run(
                lambda s: move_now(
                    s, sale_id, SaleState.CANCELLED, only_from=(SaleState.BASKET,), paid_by="t1"
                )
            )
    row = await kiosk.store.fetchone("SELECT state, paid_trade_no FROM sales")
    assert row is not None and tuple(row) == ("basket", None)
