"""Money is integer fen everywhere; this is the one place that turns fen into yuan text."""

from __future__ import annotations


def yuan(fen: int) -> str:
    """`1290` -> `¥12.90`; integer arithmetic only, so no float ever touches an amount."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole}.{cents:02d}"
