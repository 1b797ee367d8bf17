"""The `orders` table and its guarded state changes (functions run in the writer thread).

received ─► ticket_printed ─► ready ─► collected
    └──────────────────────────►┘
received / ticket_printed / ready ─► cancelled | expired
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from edged.contract.bodies import OrderLine, OrderPlaced, OrderStatus
from edged.store import Statements

OPEN = (OrderStatus.RECEIVED, OrderStatus.TICKET_PRINTED, OrderStatus.READY)
COLUMNS = (
    "id, state, lines, paid_fen, collect_mode, slot, prestocked, code_hash, expires_at, "
    "ticket_job, collected_at, collected_by, token_id, reason"
)


def code_hash(order_id: str, code: str) -> str:
    """What the backend sends as `pickup.code_hash` for the 6-digit `code`."""
    return hashlib.sha256(f"{order_id}:{code}".encode()).hexdigest()


@dataclass(frozen=True)
class Order:
    id: str
    state: OrderStatus
    lines: tuple[OrderLine, ...]
    paid_fen: int
    collect_mode: str
    slot: int | None
    prestocked: bool
    code_hash: str
    expires_at: str
    ticket_job: int | None
    collected_at: str | None
    collected_by: str | None
    token_id: str | None
    reason: str


def order_from_row(row: sqlite3.Row) -> Order:
    return Order(
        id=row["id"],
        state=OrderStatus(row["state"]),
        lines=tuple(OrderLine.model_validate(line) for line in json.loads(row["lines"])),
        paid_fen=int(row["paid_fen"]),
        collect_mode=row["collect_mode"],
        slot=row["slot"],
        prestocked=bool(row["prestocked"]),
        code_hash=row["code_hash"],
        expires_at=row["expires_at"],
        ticket_job=row["ticket_job"],
        collected_at=row["collected_at"],
        collected_by=row["collected_by"],
        token_id=row["token_id"],
        reason=row["reason"],
    )


def load_now(s: Statements, order_id: str) -> Order | None:
    row = s.fetchone(f"SELECT {COLUMNS} FROM orders WHERE id = ?", (order_id,))
    return None if row is None else order_from_row(row)


def _placed_values(placed: OrderPlaced) -> tuple[Any, ...]:
    """What `order.created` and `order.changed` store, in the order both statements name the
    columns: lines, paid_fen, collect_mode, slot, prestocked, code_hash, expires_at."""
    lines = [line.model_dump(mode="json") for line in placed.lines]
    return (
        json.dumps(lines, ensure_ascii=False),
        placed.paid_fen,
        placed.collect.mode,
        placed.collect.slot,
        int(placed.collect.prestocked),
        placed.pickup.code_hash,
        placed.pickup.expires_at,
    )


def insert_now(s: Statements, placed: OrderPlaced) -> bool:
    """Store a new order as received; False when this order id is already known."""
    changed = s.execute(
        "INSERT INTO orders (id, state, lines, paid_fen, collect_mode, slot, prestocked, "
        "code_hash, expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO NOTHING",
        (placed.order_id, OrderStatus.RECEIVED.value, *_placed_values(placed), s.now, s.now),
    )
    return changed == 1


def replace_now(s: Statements, placed: OrderPlaced) -> bool:
    """`order.changed` of an order not collected yet; False when it is no longer open."""
    marks = ",".join("?" * len(OPEN))
    changed = s.execute(
        "UPDATE orders SET lines = ?, paid_fen = ?, collect_mode = ?, slot = ?, prestocked = ?, "
        f"code_hash = ?, expires_at = ?, updated_at = ? WHERE id = ? AND state IN ({marks})",
        (*_placed_values(placed), s.now, placed.order_id, *(state.value for state in OPEN)),
    )
    return changed == 1


def move_now(
    s: Statements,
    order_id: str,
    to: OrderStatus,
    *,
    only_from: tuple[OrderStatus, ...],
    reason: str = "",
) -> bool:
    marks = ",".join("?" * len(only_from))
    changed = s.execute(
        f"UPDATE orders SET state = ?, reason = ?, updated_at = ? "
        f"WHERE id = ? AND state IN ({marks})",
        (to.value, reason, s.now, order_id, *(state.value for state in only_from)),
    )
    return changed == 1
