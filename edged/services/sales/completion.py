"""Completing a paid sale: one transaction holds the whole fact.

Called from `settle()` inside the transaction in which payments records the final SUCCESS,
so the sale turning paid, its stock decrements, the `evt/txn` message and the receipt's print
job commit together with the payment result, or not at all.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from edged.contract.topics import Uplink
from edged.services.payments.protocol import Settlement
from edged.services.printing.queue import RECEIPT, PrintQueue
from edged.services.sales.records import (
    LOAD_SALE_SQL,
    OPEN_STATES,
    Sale,
    SaleState,
    move_now,
    sale_from_rows,
)
from edged.store import Statements
from edged.store.outbox import Outbox

TXN_COMPLETED = "txn.completed"
TXN_VOIDED = "txn.voided"
CURRENCY = "CNY"


class SettlementRejected(RuntimeError):
    """A SUCCESS that does not match the sale; raising rolls the whole transaction back."""


def complete_sale(
    s: Statements,
    settlement: Settlement,
    *,
    outbox: Outbox,
    print_queue: PrintQueue,
    clock_synced: bool,
) -> Sale | None:
    """Mark the sale paid with everything that goes with it; None if it already was.

    Runs in the writer thread within payments' hop: the durable sale commit has a 5 ms
    budget and each hop to that thread costs a few tenths of a millisecond. The receipt job
    is queued without its document; `ReceiptRenderer` lays it out when it prints.
    """
    sale = sale_from_rows(s.fetchall(LOAD_SALE_SQL, (settlement.sale_id,)))
    if sale is None:
        raise SettlementRejected(f"payment {settlement.trade_no} names an unknown sale")
    if sale.state is SaleState.PAID:
        return None
    if sale.state not in OPEN_STATES:
        raise SettlementRejected(f"sale {sale.id} is {sale.state.value}; it cannot be paid")
    if settlement.amount_fen != sale.total_fen:
        raise SettlementRejected(
            f"payment {settlement.trade_no} is {settlement.amount_fen} fen, "
            f"sale {sale.id} totals {sale.total_fen} fen"
        )
    _check_payment_row(s, settlement)
    move_now(s, sale.id, SaleState.PAID, only_from=OPEN_STATES, paid_by=settlement.trade_no)
    s.executemany(
        "UPDATE stock SET quantity = quantity - ?, version = version + 1 WHERE barcode = ?",
        [(line.quantity, line.barcode) for line in sale.lines],
    )
    paid = replace(
        sale, state=SaleState.PAID, completed_at=s.now, paid_trade_no=settlement.trade_no
    )
    outbox.write(s, Uplink.TXN, TXN_COMPLETED, txn_body(paid, settlement, clock_synced))
    print_queue.enqueue_now(s, paid.id, RECEIPT, None)
    return paid


def _check_payment_row(s: Statements, settlement: Settlement) -> None:
    """Payments writes the payment row; if it is there it must agree with the settlement."""
    row = s.fetchone(
        "SELECT sale_id, amount_fen FROM payments WHERE trade_no = ?", (settlement.trade_no,)
    )
    if row is not None and (
        row["sale_id"] != settlement.sale_id or int(row["amount_fen"]) != settlement.amount_fen
    ):
        raise SettlementRejected(f"payment {settlement.trade_no} disagrees with its record")


def txn_body(sale: Sale, settlement: Settlement, clock_synced: bool) -> dict[str, Any]:
    return {
        "sale_id": sale.id,
        "sale_no": sale.seq,
        "status": "completed",
        "currency": CURRENCY,
        "lines": [line.as_dict() for line in sale.lines],
        "totals": {"items": sale.items, "total_fen": sale.total_fen},
        "payments": [
            {
                "trade_no": settlement.trade_no,
                "method": settlement.method.value,
                "amount_fen": settlement.amount_fen,
            }
        ],
        "opened_at": sale.created_at,
        "completed_at": sale.completed_at,
        "clock_synced": clock_synced and sale.clock_synced,
    }


def void_sale(
    s: Statements,
    sale_id: str,
    to: SaleState,
    *,
    only_from: tuple[SaleState, ...],
    outbox: Outbox,
    clock_synced: bool,
) -> bool:
    """Cancel or abandon a sale; one with items is reported on evt/txn as `voided` in the
    same transaction (the daily settlement counts it)."""
    sale = sale_from_rows(s.fetchall(LOAD_SALE_SQL, (sale_id,)))
    moved = move_now(s, sale_id, to, only_from=only_from)
    if moved and sale is not None and sale.lines:
        body = {
            "sale_id": sale.id,
            "sale_no": sale.seq,
            "status": "voided",
            "currency": CURRENCY,
            "lines": [line.as_dict() for line in sale.lines],
            "totals": {"items": sale.items, "total_fen": sale.total_fen},
            "payments": [],
            "opened_at": sale.created_at,
            "completed_at": s.now,
            "clock_synced": clock_synced and sale.clock_synced,
        }
        outbox.write(s, Uplink.TXN, TXN_VOIDED, body)
    return moved
