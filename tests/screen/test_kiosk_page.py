# ruff: noqa: RUF001
"""The shopper's page in real Chromium against a real daemon, broker and simulated cloud."""

from __future__ import annotations

from typing import Any

from tests.e2e.kiosk import ITEMS, code
from tests.screen.browser import decode_qr
from tests.screen.kiosk_screen import XSS_BARCODE, XSS_NAME, ScreenKiosk

WATER, COLA, NOODLES = ITEMS  # ¥2.00, ¥3.50, ¥4.50 in the bundled catalog


def open_page(page: Any, screen: ScreenKiosk, kind: str = "welcome") -> None:
    page.goto(screen.url)
    page.wait_for_selector(f'#screen[data-kind="{kind}"]')


def basket_rows(page: Any) -> list[tuple[str, str, str]]:
    """(name, quantity, amount) of every line as the shopper reads it."""
    rows: list[tuple[str, str, str]] = page.eval_on_selector_all(
        "#items .item",
        "rows => rows.map(r => [r.querySelector('.name').firstChild.textContent,"
        " r.querySelector('.qty').textContent, r.querySelector('.amount').textContent])",
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_scan_shows_the_line_and_the_buttons_change_the_basket(
    screen: ScreenKiosk, page: Any
) -> None:
    open_page(page, screen)
    assert page.text_content("#headline") == "欢迎光临 edged 测试店"

    screen.kiosk.scan(WATER)
    page.wait_for_selector("#items .item")
    assert basket_rows(page) == [("农夫山泉 饮用天然水 550ml", "1", "¥2.00")]
    assert page.text_content("#total") == "¥2.00"
    screen.kiosk.scan(COLA)
    page.wait_for_function("document.querySelectorAll('#items .item').length === 2")

    page.click('.item[data-line="2"] .more')
    page.wait_for_function("document.querySelector('#total').textContent === '¥9.00'")
    assert basket_rows(page) == [
        ("农夫山泉 饮用天然水 550ml", "1", "¥2.00"),
        ("可口可乐 330ml", "2", "¥7.00"),
    ]
    sale = screen.status()["checkout"]["sale"]
    assert [(line["line_no"], line["quantity"]) for line in sale["lines"]] == [(1, 1), (2, 2)]
    assert sale["total_fen"] == 900

    page.click('.item[data-line="2"] .less')
    page.wait_for_function("document.querySelector('#total').textContent === '¥5.50'")
    assert page.is_disabled('.item[data-line="2"] .less'), "quantity 1 cannot go lower"

    page.click('.item[data-line="1"] .remove')
    page.wait_for_function("document.querySelectorAll('#items .item').length === 1")
    assert basket_rows(page) == [("可口可乐 330ml", "1", "¥3.50")]
    assert page.text_content("#banner") == "已删除 农夫山泉 饮用天然水 550ml"
    assert screen.status()["checkout"]["sale"]["total_fen"] == 350

    page.click("#language")
    assert page.text_content("#banner") == "Removed: 农夫山泉 饮用天然水 550ml"
    assert page.text_content("#pay-qr") == "Pay in the mini-program"
    assert page.text_content("#total") == "¥3.50"

    page.click("#cancel")
    page.wait_for_selector('#screen[data-kind="welcome"]')
    assert screen.status()["checkout"]["state"] == "idle"


def test_an_unknown_barcode_says_so_and_changes_nothing(screen: ScreenKiosk, page: Any) -> None:
    open_page(page, screen)
    screen.kiosk.scan(WATER)
    page.wait_for_selector("#items .item")
    screen.kiosk.scan("6900000000007")  # a valid EAN-13 the catalog lacks
    page.wait_for_function("document.querySelector('#banner').textContent.includes('商品未找到')")
    assert basket_rows(page) == [("农夫山泉 饮用天然水 550ml", "1", "¥2.00")]
    assert page.get_attribute("#banner", "data-tone") == "warn"


def test_pay_in_the_mini_program_shows_a_qr_zbar_reads_and_the_cloud_pays(
    screen: ScreenKiosk, page: Any
) -> None:
    open_page(page, screen)
    screen.kiosk.fill_basket()
    page.wait_for_function("document.querySelector('#total').textContent === '¥10.00'")

    page.click("#pay-qr")
    page.wait_for_selector('#screen[data-kind="qr"]')
    page.wait_for_function("document.querySelector('#qr-image').naturalWidth > 0")
    assert page.text_content("#qr-total") == "¥10.00"
    assert page.text_content("#countdown") not in ("", "已过期")

    decoded = decode_qr(page.screenshot())
    shown = screen.status()["checkout"]["display"]["qr"]
    trade = screen.status()["payments"]["open"][0]
    assert decoded == [shown], "zbar reads exactly the order the daemon opened"
    assert trade["method"] == "native_qr"

    page.wait_for_selector('#screen[data-kind="paid"]', timeout=15_000)
    assert page.text_content("#paid .big") == "支付成功，谢谢惠顾"
    assert page.text_content("#paid-total") == "¥10.00"
    cloud = screen.kiosk.cloud()["trades"][trade["trade_no"]]
    assert cloud["state"] == "SUCCESS" and cloud["amount_fen"] == 1000


def test_a_payment_code_shows_paying_then_thank_you(screen: ScreenKiosk, page: Any) -> None:
    open_page(page, screen)
    screen.kiosk.fill_basket()
    screen.kiosk.scan(code("02"))  # the cloud answers "user paying": confirm on the phone
    page.wait_for_selector('#screen[data-kind="paying"]')
    assert page.text_content("#paying-total") == "¥10.00"
    assert page.is_visible("#paying-cancel"), "a payment-code payment can be called off too"
    page.wait_for_selector('#screen[data-kind="paid"]', timeout=15_000)


def test_a_daemon_restart_reconnects_the_page_to_the_same_basket(
    screen: ScreenKiosk, page: Any
) -> None:
    open_page(page, screen)
    screen.kiosk.scan(WATER)
    page.wait_for_selector("#items .item")
    first_boot = page.evaluate("window.edgedScreen.boot()")

    screen.kiosk.daemon.kill()
    page.wait_for_selector("#offline:not([hidden])")
    screen.kiosk.daemon.start()
    screen.wait_page_server()
    page.wait_for_function(
        f"window.edgedScreen.boot() && window.edgedScreen.boot() !== '{first_boot}'"
    )
    page.wait_for_selector("#offline", state="hidden")
    assert basket_rows(page) == [("农夫山泉 饮用天然水 550ml", "1", "¥2.00")]
    screen.kiosk.wait_ready()
    screen.kiosk.scan(COLA)
    page.wait_for_function("document.querySelectorAll('#items .item').length === 2")


def test_a_product_name_with_markup_is_shown_as_text(screen: ScreenKiosk, page: Any) -> None:
    open_page(page, screen)
    screen.kiosk.scan(XSS_BARCODE)
    page.wait_for_selector("#items .item")
    assert basket_rows(page) == [(XSS_NAME, "1", "¥1.00")]
    assert page.text_content("#banner") == f"{XSS_NAME} ¥1.00"
    assert page.evaluate("window.pwned") is None
    assert page.query_selector("#items script, #items img, #banner script, #banner img") is None
