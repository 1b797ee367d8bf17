"""The day's figures from the journal of `evt/txn` records: what the settlement reports.

Only the journal is read, so the settlement counts exactly what the cloud was sent: a
completed sale at its payment's success time, a refund at its success time, a voided sale
when it ended (`txn_journal.at`). The digest is SHA-256 over the day's envelope ids in txn
sequence order (which is also their envelope `seq` order), each followed by a newline, so the
backend can recompute it from what it received.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JournalTxn:
    txn_seq: int
    msg_id: str
    status: str
    amount_fen: int
    method: str


JOURNAL_OF_DAY_SQL = (
    "SELECT txn_seq, msg_id, status, amount_fen, method FROM txn_journal "
    "WHERE at >= ? AND at < ? AND status IN ('completed', 'refunded', 'voided') "
    "ORDER BY txn_seq"
)


def journal_txn(row: Any) -> JournalTxn:
    return JournalTxn(
        int(row["txn_seq"]), row["msg_id"], row["status"], int(row["amount_fen"]), row["method"]
    )


def digest(ids: Iterable[str]) -> str:
    return hashlib.sha256("".join(f"{i}\n" for i in ids).encode()).hexdigest()


def figures(txns: list[JournalTxn]) -> dict[str, Any]:
    """Counts and totals per method, refunds, net, voided, the sequence range and digest."""
    methods: dict[str, dict[str, int]] = {}
    refund_methods: dict[str, dict[str, int]] = {}
    sales = {"count": 0, "total_fen": 0}
    refunds = {"count": 0, "total_fen": 0}
    voided = 0
    for t in txns:
        if t.status == "voided":
            voided += 1
            continue
        into, table = (refunds, refund_methods) if t.status == "refunded" else (sales, methods)
        into["count"] += 1
        into["total_fen"] += t.amount_fen
        entry = table.setdefault(t.method, {"count": 0, "total_fen": 0})
        entry["count"] += 1
        entry["total_fen"] += t.amount_fen
    return {
        "sales": sales,
        "by_method": [{"method": m, **v} for m, v in sorted(methods.items())],
        "refunds": refunds,
        "refunds_by_method": [{"method": m, **v} for m, v in sorted(refund_methods.items())],
        "net_fen": sales["total_fen"] - refunds["total_fen"],
        "voided": {"count": voided},
        "txn_count": len(txns),
        "first_txn_seq": txns[0].txn_seq if txns else None,
        "last_txn_seq": txns[-1].txn_seq if txns else None,
        "digest": digest(t.msg_id for t in txns),
    }
