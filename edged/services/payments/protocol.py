"""The seam between checkout and payments.

Checkout asks payments to collect an amount for a sale; payments tells the sales ledger, inside
the very transaction that records the payment's final state, how it ended. So a sale is
completed (or sent back to the basket) atomically with the payment result that justifies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from edged.store import Statements


class PaymentMethod(StrEnum):
    WECHAT = "wechat"
    ALIPAY = "alipay"
    NATIVE_QR = "native_qr"


class PaymentOutcome(StrEnum):
    PAID = "paid"
    """A signed SUCCESS for the exact trade number and amount: goods may be released."""
    FAILED = "failed"
    """Declined, or reversed: the sale goes back to the basket."""
    CANCELLED = "cancelled"
    """Native QR expired or the shopper cancelled: the order was closed at the backend."""
    IN_DOUBT = "in_doubt"
    """The cancel was never confirmed: the sale is parked (not paid, nothing released) and
    the kiosk takes the next shopper; payments keeps resolving the trade in the background
    and never settles this sale again (a late SUCCESS is flagged for refund)."""


@dataclass(frozen=True)
class Settlement:
    sale_id: str
    trade_no: str
    method: PaymentMethod
    amount_fen: int
    outcome: PaymentOutcome
    reason: str = ""


@dataclass(frozen=True)
class NativeQr:
    trade_no: str
    qr_data: str
    """At most 32 characters: what the mini-program code carries."""
    expires_at: datetime


class SettlementSink(Protocol):
    """Implemented by the sales ledger (`edged.services.sales.ledger`)."""

    def settle(self, s: Statements, settlement: Settlement) -> None:
        """Runs in the writer thread, inside payments' transaction, as part of the same hop
        that records the final state; work for the event loop goes to `s.after`."""
        ...

    async def progress(self, sale_id: str, message: str) -> None:
        """After a commit: what the shopper should read now (e.g. confirm on your phone)."""
        ...


class Payments(Protocol):
    """Implemented by the payments service."""

    async def pay_by_code(self, sale_id: str, amount_fen: int, code: str) -> str:
        """Start a micropay; returns the trade number. The code is sealed, never stored."""
        ...

    async def pay_by_qr(self, sale_id: str, amount_fen: int) -> NativeQr: ...

    async def cancel(self, sale_id: str) -> None:
        """The shopper gave up while a native QR was shown: close the order at the backend."""
        ...

    async def recover(self) -> None:
        """Resolve every payment not in a final state (query, reverse) before a new sale."""
        ...

    def busy(self) -> bool:
        """A payment is in flight: checkout must not open a new sale."""
        ...
