"""The refund slip the kiosk prints when a refund it started there has succeeded."""

from __future__ import annotations

from datetime import datetime

from edged.services.checkout.money import yuan
from hal.printer.document import Columns, Feed, PrintDocument, Rule, Text

REFUND_SLIP = "refund_slip"


def slip_document(
    shop_name: str,
    *,
    sale_no: int,
    refund_no: str,
    amount_fen: int,
    lines: list[tuple[str, int, int]],
    when: datetime,
) -> PrintDocument:
    """`lines` are (name, quantity, amount_fen) of what was refunded; empty for an amount."""
    blocks: list[Text | Columns | Rule | Feed] = [
        Text(text=shop_name, align="center", bold=True, large=True),
        Text(text="退款凭证 Refund", align="center", bold=True),
        Text(text=f"销售单号 No. {sale_no:06d}", align="center"),
        Text(text=f"时间 {when.astimezone():%Y-%m-%d %H:%M:%S}", align="center"),
        Rule(),
    ]
    for name, quantity, fen in lines:
        blocks.append(Text(text=name))
        blocks.append(Columns(left=f"  {quantity}", right=yuan(fen)))
    blocks += [
        Rule(),
        Columns(left="退款金额 Refunded", right=yuan(amount_fen)),
        Text(text="退款单号 Refund No."),
        Text(text=refund_no),
        Text(text="款项将原路退回 Back to your account", align="center"),
        Feed(lines=2),
    ]
    return PrintDocument(blocks=blocks, cut=True)
