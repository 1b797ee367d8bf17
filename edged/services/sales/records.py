"""The persisted sale: every change to a basket is one committed transaction.

State lives in `sales.state`, so a restart resumes exactly where the shopper was:
`basket` (adding items) -> `paying` (payments holds it) -> `paid` (completed, receipt queued),
or `cancelled` (shopper gave up) / `abandoned` (inactivity timeout). Lines keep the name and
price at the moment of the scan; a voided line stays on record, marked voided.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from edged.contract.ids import new_id
from edged.store import Statements, Transaction

SALE_SEQUENCE = "sale"
MAX_QUANTITY = 999


class SaleState(StrEnum):
    BASKET = "basket"
    PAYING = "paying"
    PAID = "paid"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"
    IN_DOUBT = "in_doubt"
    """Parked: its payment's cancel was never confirmed. Not paid, nothing released; the
    payment is resolved in the background (see payments' `in_doubt`)."""


OPEN_STATES = (SaleState.BASKET, SaleState.PAYING)


class Reader(Protocol):
    """A Store (committed data) or a Transaction (its own uncommitted writes too)."""

    async def fetchone(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Row | None: ...

    async def fetchall(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]: ...


@dataclass(frozen=True)
class SaleLine:
    line_no: int
    barcode: str
    name: str
    unit_price_fen: int
    quantity: int

    @property
    def amount_fen(self) -> int:
        return self.unit_price_fen * self.quantity

    def as_dict(self) -> dict[str, int | str]:
        """The line as `evt/txn` and `edged status` show it."""
        return {
            "line_no": self.line_no,
            "barcode": self.barcode,
            "name": self.name,
            "unit_price_fen": self.unit_price_fen,
            "quantity": self.quantity,
            "amount_fen": self.amount_fen,
        }


@dataclass(frozen=True)
class Sale:
    id: str
    seq: int
    state: SaleState
    lines: tuple[SaleLine, ...]
    """Live (not voided) lines in scan order."""
    total_fen: int
    created_at: str
    clock_synced: bool
    completed_at: str | None
    paid_trade_no: str | None = None
    """The trade whose SUCCESS completed the sale; its receipt shows that one."""

    @property
    def items(self) -> int:
        return sum(line.quantity for line in self.lines)

    def line(self, line_no: int) -> SaleLine | None:
        return next((line for line in self.lines if line.line_no == line_no), None)


LOAD_SALE_SQL = (
    "SELECT s.id, s.seq, s.state, s.total_fen, s.created_at, s.clock_synced, "
    "s.completed_at, s.paid_trade_no, "
    "l.line_no, l.barcode, l.name, l.unit_price_fen, l.quantity "
    "FROM sales s LEFT JOIN sale_lines l ON l.sale_id = s.id AND l.voided = 0 "
    "WHERE s.id = ? ORDER BY l.line_no"
)
"""One query (sale joined with its live lines): every round trip to SQLite is a thread hop,
and the scan-to-display budget is counted in them."""


async def load_sale(db: Reader, sale_id: str) -> Sale | None:
    return sale_from_rows(await db.fetchall(LOAD_SALE_SQL, (sale_id,)))


def sale_from_rows(rows: list[sqlite3.Row]) -> Sale | None:
    if not rows:
        return None
    head = rows[0]
    return Sale(
        id=head["id"],
        seq=int(head["seq"]),
        state=SaleState(head["state"]),
        lines=tuple(
            SaleLine(
                int(r["line_no"]),
                r["barcode"],
                r["name"],
                int(r["unit_price_fen"]),
                int(r["quantity"]),
            )
            for r in rows
            if r["line_no"] is not None
        ),
        total_fen=int(head["total_fen"]),
        created_at=head["created_at"],
        clock_synced=bool(head["clock_synced"]),
        completed_at=head["completed_at"],
        paid_trade_no=head["paid_trade_no"],
    )


async def find_open_sale(db: Reader) -> Sale | None:
    """The sale a restart resumes: the newest one still in the basket or paying."""
    row = await db.fetchone(
        "SELECT id FROM sales WHERE state IN (?, ?) ORDER BY seq DESC LIMIT 1",
        (SaleState.BASKET.value, SaleState.PAYING.value),
    )
    return await load_sale(db, row["id"]) if row else None


def create_sale(s: Statements, clock_synced: bool) -> str:
    """A new sale numbered by a persisted sequence, never by the (possibly wrong) clock."""
    sale_id = new_id()
    seq = s.next_sequence(SALE_SEQUENCE)
    s.execute(
        "INSERT INTO sales (id, seq, state, total_fen, created_at, clock_synced, updated_at) "
        "VALUES (?, ?, ?, 0, ?, ?, ?)",
        (sale_id, seq, SaleState.BASKET.value, s.now, int(clock_synced), s.now),
    )
    return sale_id


def add_product(s: Statements, sale_id: str, barcode: str) -> int | None:
    """Add one of the catalog's product to the sale at its current price; the number of the
    line it went on, or None if the catalog has no such active product. Scanning it again
    adds one to its line, unless the price changed since: then it starts a line of its own.

    Name and price are copied from the catalog inside this transaction, so the line holds
    exactly the price that was committed when the shopper scanned.
    """
    bumped = s.fetchone(
        "UPDATE sale_lines SET quantity = quantity + 1 WHERE sale_id = ? AND barcode = ? "
        "AND voided = 0 AND quantity < ? AND unit_price_fen = "
        "(SELECT price_fen FROM products WHERE barcode = ? AND active = 1) RETURNING line_no",
        (sale_id, barcode, MAX_QUANTITY, barcode),
    )
    line = bumped or s.fetchone(
        "INSERT INTO sale_lines (sale_id, line_no, barcode, name, unit_price_fen, quantity) "
        "SELECT ?, (SELECT COALESCE(MAX(line_no), 0) + 1 FROM sale_lines WHERE sale_id = ?), "
        "barcode, name, price_fen, 1 FROM products WHERE barcode = ? AND active = 1 "
        "RETURNING line_no",
        (sale_id, sale_id, barcode),
    )
    if line is None:
        return None
    _retotal_now(s, sale_id)
    return int(line[0])


async def set_quantity(tx: Transaction, sale_id: str, line_no: int, quantity: int) -> bool:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise ValueError(f"quantity must be 1-{MAX_QUANTITY}")
    changed = await tx.execute(
        "UPDATE sale_lines SET quantity = ? WHERE sale_id = ? AND line_no = ? AND voided = 0",
        (quantity, sale_id, line_no),
    )
    if changed:
        await _retotal(tx, sale_id)
    return changed == 1


async def void_line(tx: Transaction, sale_id: str, line_no: int) -> bool:
    changed = await tx.execute(
        "UPDATE sale_lines SET voided = 1 WHERE sale_id = ? AND line_no = ? AND voided = 0",
        (sale_id, line_no),
    )
    if changed:
        await _retotal(tx, sale_id)
    return changed == 1


async def move(
    tx: Transaction, sale_id: str, to: SaleState, *, only_from: tuple[SaleState, ...]
) -> bool:
    """A guarded state change: it happens only from the expected states, else not at all."""
    return await tx.run(lambda s: move_now(s, sale_id, to, only_from=only_from))


def move_now(
    s: Statements,
    sale_id: str,
    to: SaleState,
    *,
    only_from: tuple[SaleState, ...],
    paid_by: str | None = None,
) -> bool:
    """`move` for work already running in the writer thread. A sale becomes PAID only with
    the trade that paid it (`paid_by`), which its receipt will show."""
    if (to is SaleState.PAID) != (paid_by is not None):
        raise ValueError("a sale is paid by exactly one trade, named when it becomes PAID")
    placeholders = ",".join("?" * len(only_from))
    completed = s.now if to is SaleState.PAID else None
    changed = s.execute(
        f"UPDATE sales SET state = ?, updated_at = ?, completed_at = COALESCE(?, completed_at), "
        f"paid_trade_no = COALESCE(?, paid_trade_no) "
        f"WHERE id = ? AND state IN ({placeholders})",
        (to.value, s.now, completed, paid_by, sale_id, *(st.value for st in only_from)),
    )
    return changed == 1


async def _retotal(tx: Transaction, sale_id: str) -> None:
    await tx.run(lambda s: _retotal_now(s, sale_id))


def _retotal_now(s: Statements, sale_id: str) -> None:
    s.execute(
        "UPDATE sales SET updated_at = ?, total_fen = (SELECT COALESCE(SUM(unit_price_fen * "
        "quantity), 0) FROM sale_lines WHERE sale_id = ? AND voided = 0) WHERE id = ?",
        (s.now, sale_id, sale_id),
    )
