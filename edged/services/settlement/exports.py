"""`edged report sales`: the sales with their lines, payments and refunds, for the books."""

from __future__ import annotations

from datetime import date, time, tzinfo
from typing import Any

from edged.contract.envelope import rfc3339
from edged.services.settlement.day import day_bounds
from edged.store import Store

COLUMNS = (
    "record", "sale_no", "sale_id", "at", "line_no", "barcode", "name", "unit_price_fen",
    "quantity", "amount_fen", "method", "trade_no", "refund_no", "reason",
)  # fmt: skip


async def sales_rows(
    store: Store, first: date, last: date, zone: tzinfo, cutover: time
) -> list[dict[str, Any]]:
    """Paid sales whose payment succeeded in business days `first..last`, each followed by
    its lines, its payment and its succeeded refunds (refunds whenever they happened)."""
    start, _ = day_bounds(first, zone, cutover)
    _, end = day_bounds(last, zone, cutover)
    sales = await store.fetchall(
        "SELECT s.id, s.seq, s.completed_at, s.total_fen, p.method, p.trade_no, p.amount_fen "
        "FROM sales s JOIN payments p ON p.trade_no = s.paid_trade_no "
        "WHERE s.state = 'paid' AND s.completed_at >= ? AND s.completed_at < ? ORDER BY s.seq",
        (rfc3339(start), rfc3339(end)),
    )
    out: list[dict[str, Any]] = []
    for sale in sales:
        base = {"sale_no": sale["seq"], "sale_id": sale["id"]}
        out.append(
            {**base, "record": "sale", "at": sale["completed_at"], "amount_fen": sale["total_fen"]}
        )
        for line in await store.fetchall(
            "SELECT line_no, barcode, name, unit_price_fen, quantity FROM sale_lines "
            "WHERE sale_id = ? AND voided = 0 ORDER BY line_no",
            (sale["id"],),
        ):
            out.append(
                {
                    **base, "record": "line", **dict(line),
                    "amount_fen": line["unit_price_fen"] * line["quantity"],
                }
            )  # fmt: skip
        out.append(
            {
                **base, "record": "payment", "at": sale["completed_at"], "method": sale["method"],
                "trade_no": sale["trade_no"], "amount_fen": sale["amount_fen"],
            }
        )  # fmt: skip
        for refund in await store.fetchall(
            "SELECT refund_no, amount_fen, reason, succeeded_at FROM refunds "
            "WHERE sale_id = ? AND state = 'succeeded' ORDER BY refund_seq",
            (sale["id"],),
        ):
            out.append(
                {
                    **base, "record": "refund", "at": refund["succeeded_at"],
                    "method": sale["method"], "trade_no": sale["trade_no"],
                    "refund_no": refund["refund_no"], "amount_fen": -refund["amount_fen"],
                    "reason": refund["reason"],
                }
            )  # fmt: skip
    return [{column: row.get(column, "") for column in COLUMNS} for row in out]
