"""What the customer display shows in each state of the sale, in Chinese with English hints.

Views are pure functions of committed state, so what the shopper reads is always something
that is already true in the store.
"""

from __future__ import annotations

from datetime import datetime

from edged.services.checkout import messages as M
from edged.services.checkout.money import yuan
from edged.services.checkout.receipt import METHOD_LABELS
from edged.services.payments.protocol import PaymentMethod
from edged.services.sales.records import Sale
from hal.display.view import DisplayView, ViewItem

MAX_LINES = 8
"""A screen shows the newest lines; the pole display shows only the headline and amount."""


def welcome(shop_name: str, notice: str = "") -> DisplayView:
    lines = [M.SCAN_AN_ITEM]
    if notice:
        lines.insert(0, notice)
    return DisplayView(
        headline=M.WELCOME.format(shop=shop_name),
        lines=lines,
        tone="warn" if notice else "info",
        kind="welcome",
    )


def basket(sale: Sale, headline: str | None = None, tone: str = "info") -> DisplayView:
    if headline is None:
        last = max(sale.lines, key=lambda line: line.line_no, default=None)
        headline = f"{last.name} {yuan(last.unit_price_fen)}" if last else M.BASKET_EMPTY
    lines = [
        f"{line.line_no}. {line.name} x{line.quantity} {yuan(line.amount_fen)}"
        for line in sale.lines
    ][-MAX_LINES:]
    return DisplayView(
        headline=headline,
        lines=lines,
        amount=M.TOTAL.format(amount=yuan(sale.total_fen)),
        tone=tone,
        kind="basket",
        items=_items(sale),
        total=yuan(sale.total_fen),
    )


def _items(sale: Sale) -> list[ViewItem]:
    return [
        ViewItem(
            line=line.line_no,
            name=line.name,
            quantity=line.quantity,
            unit_price=yuan(line.unit_price_fen),
            amount=yuan(line.amount_fen),
        )
        for line in sale.lines
    ]


def notice(sale: Sale | None, shop_name: str, message: str, tone: str = "warn") -> DisplayView:
    """A message that changes nothing: over the basket if there is one, else the welcome."""
    if sale is not None:
        return basket(sale, headline=message, tone=tone)
    view = welcome(shop_name, message)
    return view.model_copy(update={"tone": tone})


def paying(sale: Sale, method: PaymentMethod | None, message: str = "") -> DisplayView:
    label = METHOD_LABELS[method] if method else ""
    return DisplayView(
        headline=message or (M.PAYING_WITH.format(method=label) if label else M.PAYING),
        lines=[M.PLEASE_WAIT],
        amount=M.AMOUNT_DUE.format(amount=yuan(sale.total_fen)),
        kind="paying",
        items=_items(sale),
        total=yuan(sale.total_fen),
    )


def native_qr(sale: Sale, qr_data: str, expires_at: datetime) -> DisplayView:
    local = expires_at.astimezone()
    return DisplayView(
        headline=M.SCAN_TO_PAY,
        lines=[M.VALID_UNTIL.format(time=f"{local:%H:%M:%S}")],
        amount=M.AMOUNT_DUE.format(amount=yuan(sale.total_fen)),
        qr=qr_data,
        kind="qr",
        items=_items(sale),
        total=yuan(sale.total_fen),
        expires_at=expires_at,
    )


def thank_you(sale: Sale) -> DisplayView:
    return DisplayView(
        headline=M.THANK_YOU,
        lines=[M.SALE_NO.format(no=sale.seq), M.TAKE_RECEIPT],
        amount=M.AMOUNT_PAID.format(amount=yuan(sale.total_fen)),
        tone="ok",
        kind="paid",
        total=yuan(sale.total_fen),
    )


def payment_ended(sale: Sale, reason: str) -> DisplayView:
    return basket(sale, headline=M.PAYMENT_ENDED.format(reason=reason), tone="warn")
