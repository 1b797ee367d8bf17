"""From a full basket to a paid sale and its receipt: the payment flow of checkout.

The sale is committed as paying (its total fixed) before payments hears of it. Payments
settles with the sales ledger inside the transaction recording the payment's final state;
checkout follows the ledger and shows the outcome only after that commit, then follows the
print queue from paid to receipt to idle. After a start, no new sale until every payment a
crash left open is resolved.
"""

from __future__ import annotations

import asyncio
import logging

from edged.services.checkout import messages as M
from edged.services.checkout import views
from edged.services.checkout.codes import PaymentCode
from edged.services.checkout.session import CheckoutError, CheckoutSession, Phase
from edged.services.payments.protocol import NativeQr, PaymentMethod, PaymentOutcome, Settlement
from edged.services.printing.queue import PrintJob
from edged.services.sales.records import Sale, SaleState, load_sale, move
from edged.store import StoreUnwritable

log = logging.getLogger("edged.checkout")


class PaymentFlow(CheckoutSession):
    async def recover(self) -> None:
        """No new sale until every payment left open by a crash is resolved (payments
        queries and reverses), and a sale left paying with no payment goes back to its basket.
        """
        if self._recovered.is_set():
            return
        await self._payments.recover()
        await self._release_orphaned_payment()
        self._recovered.set()

    async def settled(self) -> None:
        """Until every settlement so far has reached the display (after its commit)."""
        await asyncio.gather(*self._after_commit, return_exceptions=True)

    async def pay_by_qr(self) -> NativeQr:
        """The shopper chose to pay in the mini-program: show the order's QR code."""
        sale = await self._start_paying(PaymentMethod.NATIVE_QR)
        try:
            qr = await self._payments.pay_by_qr(sale.id, sale.total_fen)
        except Exception as exc:
            await self._payment_did_not_start(sale, exc)
            raise CheckoutError("the mini-program payment could not start; try again") from None
        async with self._lock:
            if self._phase is Phase.PAYING and self._sale is not None and self._sale.id == sale.id:
                await self._show(views.native_qr(sale, qr.qr_data, qr.expires_at))
        return qr

    def sale_settled(self, settlement: Settlement) -> None:
        """The settling transaction committed: show its outcome (off the ledger's call)."""
        task = asyncio.create_task(self._after_settlement(settlement))
        self._after_commit.add(task)
        task.add_done_callback(self._after_commit.discard)

    async def progress(self, sale_id: str, message: str) -> None:
        sale = self._sale
        if self._phase is Phase.PAYING and sale is not None and sale.id == sale_id:
            await self._show(views.paying(sale, self._method, message))

    async def job_printing(self, job: PrintJob) -> None:
        if self._phase is Phase.PAID and job.sale_id == self._paid_sale:
            self._phase = Phase.RECEIPT

    async def job_blocked(self, job: PrintJob, problem: str) -> None:
        if self._phase in (Phase.IDLE, Phase.PAID, Phase.RECEIPT):
            message = M.RECEIPT_WAITING.format(problem=problem)
            await self._show(views.notice(None, self._settings.shop_name, message, "error"))

    async def job_printed(self, job: PrintJob) -> None:
        async with self._lock:
            if self._phase in (Phase.PAID, Phase.RECEIPT) and job.sale_id == self._paid_sale:
                self._enter(Phase.IDLE, None)
                await self._show(views.welcome(self._settings.shop_name))
            elif self._phase is Phase.IDLE and self.last_view and self.last_view.tone == "error":
                await self._show(views.welcome(self._settings.shop_name))

    async def _pay_by_code(self, code: PaymentCode) -> None:
        sale = await self._start_paying(code.method)
        try:
            await self._payments.pay_by_code(sale.id, sale.total_fen, code.code)
        except Exception as exc:
            await self._payment_did_not_start(sale, exc)
            raise CheckoutError(M.PAYMENT_NOT_STARTED) from None

    async def _start_paying(self, method: PaymentMethod) -> Sale:
        """Commit the sale as paying (its total fixed) before payments hears of it."""
        async with self._lock:
            if self._phase is Phase.PAYING:
                raise CheckoutError(M.PAYMENT_IN_PROGRESS)
            sale = self._sale
            if sale is None or not sale.lines:
                raise CheckoutError(M.SCAN_ITEMS_FIRST)
            if self._payments.busy() or not self._recovered.is_set():
                raise CheckoutError(M.PREVIOUS_PAYMENT_PENDING)
            async with self._store.transaction() as tx:
                if not await move(tx, sale.id, SaleState.PAYING, only_from=(SaleState.BASKET,)):
                    raise CheckoutError("this sale can no longer be paid")
                paying = await self._reload(tx, sale.id)
            self._method = method
            self._enter(Phase.PAYING, paying)
            await self._show(views.paying(paying, method))
            return paying

    async def _payment_did_not_start(self, sale: Sale, exc: Exception) -> None:
        """Payments refused to start (and so holds nothing): the sale is a basket again."""
        log.warning(
            "payment could not start", extra={"sale": sale.id, "reason": type(exc).__name__}
        )
        async with self._lock:
            try:
                async with self._store.transaction() as tx:
                    await move(tx, sale.id, SaleState.BASKET, only_from=(SaleState.PAYING,))
            except StoreUnwritable:
                self._orphaned = True  # moved back once the store can write again
                await self._show_sales_stopped()
                raise
            await self._refresh(sale.id)

    async def _after_settlement(self, settlement: Settlement) -> None:
        """Runs once payments' transaction is over; shows only what was committed."""
        async with self._store.transaction():
            pass  # the writer lock is FIFO: holding it means the settling transaction ended
        async with self._lock:
            sale = await load_sale(self._store, settlement.sale_id)
            if sale is None:
                return
            if sale.state is SaleState.PAID and settlement.outcome is PaymentOutcome.PAID:
                if self._sale is not None and self._sale.id != sale.id:
                    return
                self._paid_sale = sale.id
                self._enter(Phase.PAID, None)
                await self._show(views.thank_you(sale))
                self._print_queue.wake()
            elif self._sale is not None and self._sale.id == sale.id:
                if sale.state is SaleState.BASKET:
                    self._enter(Phase.BASKET, sale)
                    await self._show(views.payment_ended(sale, _reason(settlement)))
                elif sale.state is SaleState.CANCELLED:
                    self._enter(Phase.IDLE, None)
                    message = M.SALE_CANCELLED
                    await self._show(views.welcome(self._settings.shop_name, message))
                elif sale.state is SaleState.IN_DOUBT:
                    # Said once; the next scan starts the next shopper's sale.
                    self._enter(Phase.IDLE, None)
                    notice = M.PAYMENT_IN_DOUBT
                    await self._show(views.welcome(self._settings.shop_name, notice))

    async def _release_orphaned_payment(self) -> None:
        """A sale left paying with no payment in flight (crash before payments heard of it)."""
        async with self._lock:
            sale = self._sale
            if sale is None or self._phase is not Phase.PAYING:
                return
            if self._payments.busy():
                return
            async with self._store.transaction() as tx:
                await move(tx, sale.id, SaleState.BASKET, only_from=(SaleState.PAYING,))
            await self._refresh(sale.id, M.PAYMENT_NOT_COMPLETED)


def _reason(settlement: Settlement) -> str:
    if settlement.outcome is PaymentOutcome.CANCELLED:
        return M.CANCELLED_REASON
    return settlement.reason or M.DECLINED
