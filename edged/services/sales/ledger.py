"""The sales ledger: where a payment's final state becomes a paid, returned or cancelled sale.

Payments settles with the ledger (it is payments' `SettlementSink`) inside the transaction
that records the payment's final state, so a paid sale, its stock, its `evt/txn` message
and its receipt job commit together with the payment result. Whoever shows or acts on sales
(checkout's display, later refunds and goods release) follows the ledger: it is told once the
settlement committed. So payments and checkout both depend on the ledger, not on each other's
back: checkout asks payments to collect, payments tells the ledger how it ended.
"""

from __future__ import annotations

from typing import Protocol

from edged.services.payments.protocol import PaymentOutcome, Settlement
from edged.services.printing.queue import PrintQueue
from edged.services.sales.completion import complete_sale, void_sale
from edged.services.sales.records import SaleState, move_now
from edged.store import Statements, Store
from edged.store.outbox import Outbox


class SaleFollower(Protocol):
    def sale_settled(self, settlement: Settlement) -> None:
        """On the event loop, after the settling transaction committed; schedule, don't wait."""
        ...

    async def progress(self, sale_id: str, message: str) -> None:
        """After a payment's commit: what the shopper should read now."""
        ...


class SalesLedger:
    """Implements `SettlementSink` for payments; followers hear what committed."""

    def __init__(self, store: Store, outbox: Outbox, print_queue: PrintQueue) -> None:
        self._store = store
        self._outbox = outbox
        self._print_queue = print_queue
        self._followers: list[SaleFollower] = []
        self._cancel_requested: set[str] = set()

    def follow(self, follower: SaleFollower) -> None:
        self._followers.append(follower)

    def request_cancel(self, sale_id: str) -> None:
        """The shopper gave up while paying: if the payment does not succeed, the sale is
        cancelled instead of going back to the basket."""
        self._cancel_requested.add(sale_id)

    # -- SettlementSink -------------------------------------------------------------------

    def settle(self, s: Statements, settlement: Settlement) -> None:
        """Inside payments' transaction: complete the sale, or send it back to the basket."""
        if settlement.outcome is PaymentOutcome.PAID:
            complete_sale(
                s,
                settlement,
                outbox=self._outbox,
                print_queue=self._print_queue,
                clock_synced=self._store.clock.synced(),
            )
        elif settlement.outcome is PaymentOutcome.IN_DOUBT:
            move_now(s, settlement.sale_id, SaleState.IN_DOUBT, only_from=(SaleState.PAYING,))
        else:
            back_to = (
                SaleState.CANCELLED
                if settlement.sale_id in self._cancel_requested
                else SaleState.BASKET
            )
            if back_to is SaleState.CANCELLED:
                self.void_now(s, settlement.sale_id, back_to, only_from=(SaleState.PAYING,))
            else:
                move_now(s, settlement.sale_id, back_to, only_from=(SaleState.PAYING,))
        s.after.append(lambda: self._settled(settlement))

    def void_now(
        self, s: Statements, sale_id: str, to: SaleState, *, only_from: tuple[SaleState, ...]
    ) -> bool:
        """Cancel or abandon a sale (in the writer thread); one with items is reported voided."""
        return void_sale(
            s, sale_id, to, only_from=only_from, outbox=self._outbox,
            clock_synced=self._store.clock.synced(),
        )  # fmt: skip

    async def progress(self, sale_id: str, message: str) -> None:
        for follower in self._followers:
            await follower.progress(sale_id, message)

    def _settled(self, settlement: Settlement) -> None:
        self._cancel_requested.discard(settlement.sale_id)
        for follower in self._followers:
            follower.sale_settled(settlement)
