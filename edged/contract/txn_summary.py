"""What the daily settlement needs from an `evt/txn` body, read without trusting its shape.

The outbox journals every `evt/txn` message with this summary (store layer, no services), so
the settlement counts exactly what was sent: a completed sale at its payment's success time,
a refund at its success time, a voided sale at the time it ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TxnSummary:
    status: str
    """`completed`, `refunded`, `voided`, or `other` for a body this does not know."""
    at: str | None
    amount_fen: int
    """Paid for a completed sale, refunded for a refund, 0 for a void."""
    method: str


def summarize(type_name: str, body: dict[str, Any]) -> TxnSummary:
    status = body.get("status")
    if type_name == "txn.refunded" and status == "refunded":
        return TxnSummary(
            "refunded",
            _text(body.get("succeeded_at")),
            _fen(body.get("amount_fen")),
            str(body.get("method", "")),
        )
    if status == "completed":
        payments = body.get("payments") or []
        paid = sum(_fen(p.get("amount_fen")) for p in payments if isinstance(p, dict))
        method = (
            str(payments[0].get("method", "")) if payments and isinstance(payments[0], dict) else ""
        )
        return TxnSummary("completed", _text(body.get("completed_at")), paid, method)
    if status == "voided":
        at = _text(body.get("completed_at")) or _text(body.get("opened_at"))
        return TxnSummary("voided", at, 0, "")
    return TxnSummary("other", None, 0, "")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _fen(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
