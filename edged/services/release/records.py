"""The `releases` table: one row per sale, order or operations request (`op.door.unlock`),
every state change a guarded UPDATE.

    pending ─► unlocked ─► opened ─► closed
       │          │           └──► left_open ─► closed
       │          ├──► not_opened (relocked; the sale is marked for refund)
       │          └──► failed (the relay could not be switched, or edged stopped meanwhile)
       └──► not_opened (a restart too long after the payment: never unlocked; refund mark)

A request's release is never marked for refund (nothing was paid); one left `pending` by a
restart ends `failed` without an unlock (its command ended as interrupted).
`ended_at` is set when a release is over; a lock pulsed without a door sensor ends `unlocked`.
Functions here run in the writer thread (`Statements`), inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from edged.contract.bodies import ReleaseState
from edged.store import Statements

ACTIVE = (ReleaseState.UNLOCKED, ReleaseState.OPENED, ReleaseState.LEFT_OPEN)
"""The door may be unlocked or open: the slot is busy."""
REFUND_REASON = "goods_not_released"

COLUMNS = (
    "id, sale_id, order_id, request_id, slot, state, reason, paid_at, created_at, updated_at, "
    "unlocked_at, opened_at, ended_at"
)


@dataclass(frozen=True)
class Release:
    id: int
    sale_id: str | None
    order_id: str | None
    request_id: str | None
    slot: int
    state: ReleaseState
    reason: str
    paid_at: str
    unlocked_at: str | None
    opened_at: str | None
    ended_at: str | None

    @property
    def ended(self) -> bool:
        return self.ended_at is not None


def release_from_row(row: sqlite3.Row) -> Release:
    return Release(
        id=int(row["id"]),
        sale_id=row["sale_id"],
        order_id=row["order_id"],
        request_id=row["request_id"],
        slot=int(row["slot"]),
        state=ReleaseState(row["state"]),
        reason=row["reason"],
        paid_at=row["paid_at"],
        unlocked_at=row["unlocked_at"],
        opened_at=row["opened_at"],
        ended_at=row["ended_at"],
    )


def create_pending_now(
    s: Statements,
    *,
    slot: int,
    sale_id: str | None = None,
    order_id: str | None = None,
    request_id: str | None = None,
) -> Release | None:
    """The release of a just-paid sale (a redeemed order, an operations request); None when
    it already has one."""
    row = s.fetchone(
        "INSERT INTO releases (sale_id, order_id, request_id, slot, state, paid_at, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING " + COLUMNS,
        (sale_id, order_id, request_id, slot, ReleaseState.PENDING.value, s.now, s.now, s.now),
    )
    return None if row is None else release_from_row(row)


def load_for_request_now(s: Statements, request_id: str) -> Release | None:
    row = s.fetchone(f"SELECT {COLUMNS} FROM releases WHERE request_id = ?", (request_id,))
    return None if row is None else release_from_row(row)


def load_now(s: Statements, release_id: int) -> Release | None:
    row = s.fetchone(f"SELECT {COLUMNS} FROM releases WHERE id = ?", (release_id,))
    return None if row is None else release_from_row(row)


def move_now(
    s: Statements,
    release: Release,
    to: ReleaseState,
    *,
    reason: str = "",
    ends: bool = False,
) -> Release | None:
    """Change the state only from the one it had when read; None when it moved meanwhile."""
    stamp = {ReleaseState.UNLOCKED: "unlocked_at", ReleaseState.OPENED: "opened_at"}.get(to)
    extra = f", {stamp} = COALESCE({stamp}, ?)" if stamp else ""
    params: list[object] = [to.value, reason or release.reason, s.now]
    if stamp:
        params.append(s.now)
    params.extend([s.now if ends else None, release.id, release.state.value])
    row = s.fetchone(
        f"UPDATE releases SET state = ?, reason = ?, updated_at = ?{extra}, "
        "ended_at = COALESCE(?, ended_at) "
        f"WHERE id = ? AND state = ? AND ended_at IS NULL RETURNING {COLUMNS}",
        params,
    )
    return None if row is None else release_from_row(row)


def mark_for_refund_now(s: Statements, sale_id: str) -> bool:
    """Mark a paid sale whose goods were not released; the refunds service refunds it."""
    changed = s.execute(
        "INSERT INTO refund_marks (sale_id, reason, marked_at) VALUES (?, ?, ?) "
        "ON CONFLICT (sale_id) DO NOTHING",
        (sale_id, REFUND_REASON, s.now),
    )
    return changed == 1


def pending_now(s: Statements) -> list[Release]:
    rows = s.fetchall(
        f"SELECT {COLUMNS} FROM releases WHERE state = ? AND ended_at IS NULL ORDER BY id",
        (ReleaseState.PENDING.value,),
    )
    return [release_from_row(row) for row in rows]


def active_on_slot_now(s: Statements, slot: int) -> Release | None:
    marks = ",".join("?" * len(ACTIVE))
    row = s.fetchone(
        f"SELECT {COLUMNS} FROM releases WHERE slot = ? AND ended_at IS NULL "
        f"AND state IN ({marks}) ORDER BY id DESC LIMIT 1",
        (slot, *(state.value for state in ACTIVE)),
    )
    return None if row is None else release_from_row(row)
