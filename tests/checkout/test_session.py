"""The sale session as the shopper lives it: scan, change, cancel, walk away, restart."""

from __future__ import annotations

import pytest

from edged.services.checkout import messages as M
from edged.services.checkout.service import CheckoutError, Phase
from tests.checkout.conftest import COLA, GUM, WATER, WECHAT_CODE, KioskFactory, eventually


async def sale_rows(kiosk) -> list[tuple[int, str, int]]:  # type: ignore[no-untyped-def]
    rows = await kiosk.store.fetchall("SELECT seq, state, total_fen FROM sales ORDER BY seq")
    return [(r["seq"], r["state"], r["total_fen"]) for r in rows]


async def test_idle_kiosk_welcomes(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk()
    assert kiosk.checkout.phase is Phase.IDLE
    assert kiosk.headline == "欢迎光临 便利店 Test Shop"


async def test_scans_build_a_committed_basket(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk()
    await kiosk.scan(WATER)
    await kiosk.scan(COLA)
    await kiosk.scan(WATER)  # the same product again: quantity + 1, not a new line
    await kiosk.scan(GUM)

    assert kiosk.checkout.phase is Phase.BASKET
    view = kiosk.display.current
    assert view is not None
    assert view.headline == "绿箭 口香糖 5片 ¥2.50"
    assert view.lines == [
        "1. 农夫山泉 饮用天然水 550ml x2 ¥4.00",
        "2. 可口可乐 330ml x1 ¥3.50",
        "3. 绿箭 口香糖 5片 x1 ¥2.50",
    ]
    assert view.amount == "合计 ¥10.00"
    # What the display says is what the store holds (integer fen).
    assert await sale_rows(kiosk) == [(1, "basket", 1000)]
    lines = await kiosk.store.fetchall(
        "SELECT barcode, quantity, unit_price_fen FROM sale_lines ORDER BY line_no"
    )
    assert [tuple(r) for r in lines] == [(WATER, 2, 200), (COLA, 1, 350), (GUM, 1, 250)]


async def test_quantity_void_and_cancel(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk()
    await kiosk.scan(WATER)
    await kiosk.scan(COLA)
    sale = await kiosk.checkout.set_quantity(1, 5)
    assert sale.total_fen == 5 * 200 + 350
    assert kiosk.display.current is not None
    assert kiosk.display.current.amount == "合计 ¥13.50"

    sale = await kiosk.checkout.void_line(2)
    assert [line.barcode for line in sale.lines] == [WATER]
    assert kiosk.headline == "已删除 Removed: 可口可乐 330ml"
    assert await sale_rows(kiosk) == [(1, "basket", 1000)]

    assert await kiosk.checkout.cancel() == "cancelled"
    assert kiosk.checkout.phase is Phase.IDLE
    assert kiosk.display.current is not None
    assert kiosk.display.current.lines[0] == "已取消 Sale cancelled"
    assert await sale_rows(kiosk) == [(1, "cancelled", 1000)]

    await kiosk.scan(COLA)  # the next shopper gets the next persisted number
    assert await sale_rows(kiosk) == [(1, "cancelled", 1000), (2, "basket", 350)]


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda c: c.set_quantity(9, 2), "no line 9 in the basket"),
        (lambda c: c.set_quantity(1, 0), "quantity must be 1-999"),
        (lambda c: c.set_quantity(1, 1000), "quantity must be 1-999"),
        (lambda c: c.void_line(4), "no line 4 in the basket"),
    ],
)
async def test_bad_basket_requests_change_nothing(
    make_kiosk: KioskFactory,
    action,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    kiosk = await make_kiosk()
    await kiosk.scan(WATER)
    before = await sale_rows(kiosk)
    with pytest.raises(CheckoutError, match=message):
        await action(kiosk.checkout)
    assert await sale_rows(kiosk) == before


async def test_requests_without_a_basket_are_refused(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk()
    for action in (lambda: kiosk.checkout.void_line(1), kiosk.checkout.cancel):
        with pytest.raises(CheckoutError):
            await action()
    with pytest.raises(CheckoutError, match="Scan your items first"):
        await kiosk.checkout.pay_by_qr()
    assert await sale_rows(kiosk) == []


async def test_unknown_code_and_unknown_product_change_nothing(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk()
    await kiosk.scan(WATER)
    await kiosk.scan("6901028075832")  # check digit wrong
    assert kiosk.headline == "无法识别的条码 Unknown code (barcode check digit is wrong)"
    assert kiosk.display.current is not None
    assert kiosk.display.current.amount == "合计 ¥2.00"  # the basket is still shown
    await kiosk.scan("6900000000007")  # a valid EAN-13 not in the catalog
    assert kiosk.headline == M.PRODUCT_NOT_FOUND
    await kiosk.scan("not a code!")
    assert kiosk.headline.startswith("无法识别的条码")
    assert await sale_rows(kiosk) == [(1, "basket", 200)]


async def test_unknown_code_when_idle_opens_no_sale(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk()
    await kiosk.scan("??")
    assert kiosk.checkout.phase is Phase.IDLE
    assert kiosk.headline == "欢迎光临 便利店 Test Shop"
    assert kiosk.display.current is not None
    assert kiosk.display.current.lines[0].startswith("无法识别的条码")
    assert await sale_rows(kiosk) == []


async def test_payment_code_without_basket_asks_for_items(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk()
    await kiosk.scan(WECHAT_CODE)
    assert kiosk.display.current is not None
    assert kiosk.display.current.lines[0] == "请先扫描商品 Scan your items first"
    assert kiosk.payments.codes_seen == 0
    assert await sale_rows(kiosk) == []


async def test_full_store_refuses_a_new_sale(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk()
    kiosk.allowed[0] = False
    await kiosk.scan(WATER)
    assert kiosk.checkout.phase is Phase.IDLE
    assert kiosk.display.current is not None
    assert kiosk.display.current.tone == "warn"
    assert kiosk.display.current.lines[0] == M.SALES_STOPPED
    assert await sale_rows(kiosk) == []
    kiosk.allowed[0] = True
    await kiosk.scan(WATER)
    assert await sale_rows(kiosk) == [(1, "basket", 200)]


async def test_sale_limit_refuses_the_item(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk(max_sale_fen=500)
    await kiosk.scan(COLA)
    await kiosk.scan(COLA)  # 700 fen > 500
    assert kiosk.headline == "超过单笔限额 Sale limit reached"
    assert await sale_rows(kiosk) == [(1, "basket", 350)]


async def test_restart_resumes_the_basket(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk()
    await kiosk.scan(WATER)
    await kiosk.scan(COLA)
    await kiosk.stop()

    again = await make_kiosk()
    assert again.checkout.phase is Phase.BASKET
    assert again.display.current is not None
    assert again.display.current.amount == "合计 ¥5.50"
    await again.scan(WATER)
    assert await sale_rows(again) == [(1, "basket", 750)]


async def test_inactivity_timeout_clears_the_basket(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk(timeout_s=0.2)
    await kiosk.scan(WATER)
    await eventually(lambda: _phase_is(kiosk, Phase.IDLE), within_s=3)
    assert kiosk.display.current is not None
    assert kiosk.display.current.lines[0] == "购物车已超时清空 Basket cleared after inactivity"
    assert await sale_rows(kiosk) == [(1, "abandoned", 200)]


async def test_activity_postpones_the_timeout(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk(timeout_s=60)
    await kiosk.scan(WATER)
    kiosk.clock.offset += 59
    await kiosk.scan(COLA)  # activity at 59 s: the basket lives another minute
    kiosk.clock.offset += 30
    await kiosk.checkout.set_quantity(1, 2)
    kiosk.clock.offset += 61
    await kiosk.scan("??")  # an unknown scan wakes the timer, it is not activity on the basket
    await eventually(lambda: _phase_is(kiosk, Phase.IDLE), within_s=3)
    assert await sale_rows(kiosk) == [(1, "abandoned", 750)]


async def _phase_is(kiosk, phase: Phase) -> bool:  # type: ignore[no-untyped-def]
    return bool(kiosk.checkout.phase is phase)
