"""A test double of the Payments service that keeps the Protocol's promises honestly.

Like the real service it writes a payments row per trade (never the code), is `busy()` while
a payment is open, and reports each final state by calling `settle()` inside the very
transaction that records it, then `progress()` after the commit. Tests decide the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from edged.contract.ids import new_id
from edged.services.payments.protocol import (
    NativeQr,
    PaymentMethod,
    PaymentOutcome,
    Settlement,
    SettlementSink,
)
from edged.store import Store


class Refused(ValueError):
    """pay_by_code refused before anything happened (e.g. no seal key)."""


@dataclass
class OpenPayment:
    trade_no: str
    sale_id: str
    method: PaymentMethod
    amount_fen: int


@dataclass
class PaymentsDouble:
    store: Store
    sink: SettlementSink
    refuse: bool = False
    open: dict[str, OpenPayment] = field(default_factory=dict)
    codes_seen: int = 0
    recovered: bool = False
    recover_outcome: PaymentOutcome = PaymentOutcome.FAILED
    cancelled: list[str] = field(default_factory=list)

    async def pay_by_code(self, sale_id: str, amount_fen: int, code: str) -> str:
        if self.refuse:
            raise Refused("no backend seal key")
        method = PaymentMethod.WECHAT if code[:2] < "16" else PaymentMethod.ALIPAY
        self.codes_seen += 1
        return await self._open(sale_id, amount_fen, method)

    async def pay_by_qr(self, sale_id: str, amount_fen: int) -> NativeQr:
        trade_no = await self._open(sale_id, amount_fen, PaymentMethod.NATIVE_QR)
        return NativeQr(trade_no, f"Q{trade_no[:20]}", datetime.now(UTC) + timedelta(minutes=5))

    async def cancel(self, sale_id: str) -> None:
        self.cancelled.append(sale_id)
        for payment in list(self.open.values()):
            if payment.sale_id == sale_id:
                await self.finish(payment.trade_no, PaymentOutcome.CANCELLED, "closed")

    async def recover(self) -> None:
        for trade_no in list(self.open):
            await self.finish(trade_no, self.recover_outcome, "resolved by query")
        self.recovered = True

    def busy(self) -> bool:
        return bool(self.open)

    async def load_open(self) -> None:
        """Like the real service at start: open payments come from the store."""
        rows = await self.store.fetchall(
            "SELECT trade_no, sale_id, method, amount_fen FROM payments "
            "WHERE state NOT IN ('success', 'failed', 'cancelled')"
        )
        for row in rows:
            self.open[row["trade_no"]] = OpenPayment(
                row["trade_no"], row["sale_id"], PaymentMethod(row["method"]), row["amount_fen"]
            )

    async def say(self, sale_id: str, message: str) -> None:
        await self.sink.progress(sale_id, message)

    async def finish(
        self,
        trade_no: str,
        outcome: PaymentOutcome,
        reason: str = "",
        amount_fen: int | None = None,
    ) -> None:
        payment = self.open[trade_no]
        state = {"paid": "success", "failed": "failed", "cancelled": "cancelled"}[outcome.value]
        async with self.store.transaction() as tx:
            await tx.execute(
                "UPDATE payments SET state = ?, updated_at = ? WHERE trade_no = ?",
                (state, tx.now, trade_no),
            )
            settlement = Settlement(
                sale_id=payment.sale_id,
                trade_no=trade_no,
                method=payment.method,
                amount_fen=payment.amount_fen if amount_fen is None else amount_fen,
                outcome=outcome,
                reason=reason,
            )
            await tx.run(lambda s: self.sink.settle(s, settlement))
        del self.open[trade_no]

    def trade_for(self, sale_id: str) -> str:
        return next(p.trade_no for p in self.open.values() if p.sale_id == sale_id)

    async def _open(self, sale_id: str, amount_fen: int, method: PaymentMethod) -> str:
        trade_no = new_id().replace("-", "")
        async with self.store.transaction() as tx:
            await tx.execute(
                "INSERT INTO payments (trade_no, sale_id, method, amount_fen, state, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, 'requested', ?, ?)",
                (trade_no, sale_id, method.value, amount_fen, tx.now, tx.now),
            )
        self.open[trade_no] = OpenPayment(trade_no, sale_id, method, amount_fen)
        return trade_no
