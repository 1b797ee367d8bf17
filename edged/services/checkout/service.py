"""The checkout session: scans in, committed basket changes and display views out.

The session is a persisted state machine (see `sales`): idle -> basket -> paying -> paid ->
receipt -> idle. Every change is committed before the display shows it. Payments owns the
money; checkout hands it a sale and hears back through `settle()`, which runs inside the
transaction recording the payment's final state, so a paid sale and its payment commit
together. Checkout asks payments to collect and follows the sales ledger, which payments
settles with; display updates for a settlement come after that transaction committed.

A disk too full to write (`StoreUnwritable`, at any write site) changes nothing: the shopper
reads "sales stopped, please ask staff" at once, the open sale stays as it was, and when a
write commits again (the store tells checkout) the screen shows the sale where it was.

Locking: `_lock` serialises shopper actions. `sale_settled()` and `progress()` never take it, since
the ledger may call them while checkout is waiting on payments.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from edged.services.checkout import messages as M
from edged.services.checkout import views
from edged.services.checkout.codes import (
    ForeignCode,
    PaymentCode,
    ProductCode,
    UnknownCode,
    classify,
)
from edged.services.checkout.money import yuan
from edged.services.checkout.receipt import ReceiptRenderer
from edged.services.payments.protocol import (
    NativeQr,
    PaymentMethod,
    PaymentOutcome,
    Payments,
    Settlement,
)
from edged.services.printing.queue import RECEIPT, PrintJob, PrintQueue
from edged.services.sales.ledger import SalesLedger
from edged.services.sales.records import (
    LOAD_SALE_SQL,
    Sale,
    SaleState,
    add_product,
    create_sale,
    find_open_sale,
    load_sale,
    move,
    sale_from_rows,
    set_quantity,
    void_line,
)
from edged.store import Statements, Store, StoreUnwritable, Transaction
from hal.device import DeviceError
from hal.display.protocol import Display
from hal.display.view import DisplayView
from hal.scanner.protocol import Scan

log = logging.getLogger("edged.checkout")


class Phase(StrEnum):
    IDLE = "idle"
    BASKET = "basket"
    PAYING = "paying"
    PAID = "paid"
    RECEIPT = "receipt"


class CheckoutError(ValueError):
    """A request that cannot be carried out now; nothing changed, the message says why."""


@dataclass(frozen=True)
class CheckoutSettings:
    shop_name: str
    order_url: str
    inactivity_timeout_s: float
    max_sale_fen: int


class Checkout:
    def __init__(
        self,
        store: Store,
        display: Display,
        print_queue: PrintQueue,
        settings: CheckoutSettings,
        *,
        sales_allowed: Callable[[], bool],
        payments: Payments,
        sales: SalesLedger,
    ) -> None:
        self._store = store
        self._sales = sales
        self._display = display
        self._print_queue = print_queue
        self._settings = settings
        self._sales_allowed = sales_allowed
        self._payments = payments
        self._lock = asyncio.Lock()
        self._phase = Phase.IDLE
        self._sale: Sale | None = None
        self._method: PaymentMethod | None = None
        self._paid_sale: str | None = None
        self._recovered = asyncio.Event()
        self._activity = asyncio.Event()
        self._last_activity = store.clock.monotonic()
        self._after_commit: set[asyncio.Task[None]] = set()
        self._scan_event = asyncio.Event()
        self.scans_handled = 0
        self.last_view: DisplayView | None = None
        print_queue.add_listener(self)
        print_queue.add_renderer(
            RECEIPT, ReceiptRenderer(store, settings.shop_name, settings.order_url)
        )
        sales.follow(self)
        self._orphaned = False
        """The sale is paying in the store, but its payment never started and the move back
        to the basket could not be written; done once the store takes writes again."""
        self._stopped_shown = False
        store.on_write_trouble(self._store_trouble)

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def sale(self) -> Sale | None:
        return self._sale

    # -- lifecycle ------------------------------------------------------------------------

    async def resume(self) -> None:
        """After a start: pick up the open sale where the shopper left it."""
        async with self._lock:
            sale = await find_open_sale(self._store)
            if sale is None:
                self._enter(Phase.IDLE, None)
                await self._show(views.welcome(self._settings.shop_name))
                return
            phase = Phase.PAYING if sale.state is SaleState.PAYING else Phase.BASKET
            self._enter(phase, sale)
            if phase is Phase.PAYING:
                await self._show(views.paying(sale, None))
            else:
                await self._show(views.basket(sale))

    async def run(self) -> None:
        """Recover payments, then watch for inactivity; one supervised task."""
        await self.recover()
        await self._watch_inactivity()

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

    async def close(self) -> None:
        for task in list(self._after_commit):
            task.cancel()
        await asyncio.gather(*self._after_commit, return_exceptions=True)

    # -- shopper actions ------------------------------------------------------------------

    async def handle_scan(self, scan: Scan) -> None:
        """Registered with the daemon's scan dispatch; scans from scanner and camera alike."""
        code = classify(scan.text)
        try:
            if isinstance(code, ForeignCode):
                return  # another service's code (a pickup QR): not a change to the basket
            if isinstance(code, PaymentCode):
                await self._pay_by_code(code)
            else:
                async with self._lock:
                    if isinstance(code, ProductCode):
                        await self._add(code)
                    else:
                        await self._unknown(code)
        except CheckoutError as exc:
            async with self._lock:
                await self._show(views.notice(self._sale, self._settings.shop_name, str(exc)))
        except StoreUnwritable as exc:
            log.error("scan not taken: the store cannot write", extra={"reason": exc.reason})
            async with self._lock:
                await self._show_sales_stopped()
        finally:
            self._count_scan()

    async def set_quantity(self, line_no: int, quantity: int) -> Sale:
        async with self._lock:
            sale = self._basket_sale()
            if sale.line(line_no) is None:
                raise CheckoutError(f"no line {line_no} in the basket")
            if not 1 <= quantity <= 999:
                raise CheckoutError("quantity must be 1-999")
            line = sale.line(line_no)
            assert line is not None
            self._check_limit(sale.total_fen + line.unit_price_fen * (quantity - line.quantity))
            async with self._store.transaction() as tx:
                await set_quantity(tx, sale.id, line_no, quantity)
                updated = await self._reload(tx, sale.id)
            self._enter(Phase.BASKET, updated)
            await self._show(views.basket(updated, headline=f"{line.name} x{quantity}"))
            return updated

    async def void_line(self, line_no: int) -> Sale:
        async with self._lock:
            sale = self._basket_sale()
            line = sale.line(line_no)
            if line is None:
                raise CheckoutError(f"no line {line_no} in the basket")
            async with self._store.transaction() as tx:
                await void_line(tx, sale.id, line_no)
                updated = await self._reload(tx, sale.id)
            self._enter(Phase.BASKET, updated)
            await self._show(views.basket(updated, headline=M.REMOVED.format(name=line.name)))
            return updated

    async def cancel(self) -> str:
        """Cancel the basket; while paying, ask payments to close or reverse the payment."""
        async with self._lock:
            sale = self._sale
            if sale is None:
                raise CheckoutError("there is no sale to cancel")
            if self._phase is Phase.BASKET:
                async with self._store.transaction() as tx:
                    await move(tx, sale.id, SaleState.CANCELLED, only_from=(SaleState.BASKET,))
                self._enter(Phase.IDLE, None)
                await self._show(views.welcome(self._settings.shop_name, M.SALE_CANCELLED))
                return "cancelled"
            # A payment-code payment is reversed (or withdrawn if it never left); asked again
            # while that is unconfirmed, payments parks it, so staff always have a way out.
            self._sales.request_cancel(sale.id)
            await self._show(views.paying(sale, self._method, M.CANCELLING))
            payments = self._payments
        await payments.cancel(sale.id)
        return "cancelling"

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

    # -- SaleFollower (the sales ledger) -------------------------------------------------

    def sale_settled(self, settlement: Settlement) -> None:
        """The settling transaction committed: show its outcome (off the ledger's call)."""
        task = asyncio.create_task(self._after_settlement(settlement))
        self._after_commit.add(task)
        task.add_done_callback(self._after_commit.discard)

    async def progress(self, sale_id: str, message: str) -> None:
        sale = self._sale
        if self._phase is Phase.PAYING and sale is not None and sale.id == sale_id:
            await self._show(views.paying(sale, self._method, message))

    # -- PrintListener --------------------------------------------------------------------

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

    # -- status -----------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        sale = self._sale
        return {
            "state": self._phase.value,
            "recovered": self._recovered.is_set(),
            "sale": None
            if sale is None
            else {
                "id": sale.id,
                "no": sale.seq,
                "state": sale.state.value,
                "items": sale.items,
                "total_fen": sale.total_fen,
                "lines": [line.as_dict() for line in sale.lines],
            },
            "last_paid_sale": self._paid_sale,
            "display": None if self.last_view is None else self.last_view.model_dump(),
            "print_queue": await self._print_queue.status(),
            "scans_handled": self.scans_handled,
        }

    async def wait_for_scans(self, count: int, within_s: float) -> None:
        """Until `count` scans were handled (used by `sim.scan` to answer with the outcome)."""
        async with asyncio.timeout(within_s):
            while self.scans_handled < count:
                await self._scan_event.wait()

    # -- internals --------------------------------------------------------------------------

    async def _add(self, code: ProductCode) -> None:
        if self._phase is Phase.PAYING:
            raise CheckoutError(M.PAYMENT_IN_PROGRESS)
        sale = self._sale
        if sale is None:
            self._check_new_sale_allowed()
        synced = self._store.clock.synced()

        def add(s: Statements) -> tuple[Sale, int]:
            sale_id = sale.id if sale else create_sale(s, synced)
            line_no = add_product(s, sale_id, code.key)
            if line_no is None:
                raise CheckoutError(M.PRODUCT_NOT_FOUND)  # rolls back a just-opened sale too
            added = sale_from_rows(s.fetchall(LOAD_SALE_SQL, (sale_id,)))
            assert added is not None
            self._check_limit(added.total_fen)  # over the limit: rolled back, not shown
            return added, line_no

        async with self._store.transaction() as tx:
            adding = tx.defer(add)  # rides on the COMMIT: a scan is one hop to the writer
        updated, line_no = adding.result()
        self._enter(Phase.BASKET, updated)
        line = updated.line(line_no)
        assert line is not None
        await self._show(views.basket(updated, headline=f"{line.name} {yuan(line.unit_price_fen)}"))

    async def _unknown(self, code: UnknownCode) -> None:
        message = M.UNKNOWN_CODE.format(reason=code.reason)
        await self._show(views.notice(self._sale, self._settings.shop_name, message))

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

    # -- the store cannot write --------------------------------------------------------------

    def _store_trouble(self, reason: str) -> None:
        """From the store, on the loop: a write failed for lack of disk, or one committed."""
        task = asyncio.create_task(self._store_changed(reason))
        self._after_commit.add(task)
        task.add_done_callback(self._after_commit.discard)

    async def _store_changed(self, reason: str) -> None:
        if reason:
            async with self._lock:
                await self._show_sales_stopped()
            return
        if self._orphaned:
            self._orphaned = False
            try:
                await self._release_orphaned_payment()
            except StoreUnwritable:
                self._orphaned = True
                return
        async with self._lock:
            if not self._stopped_shown:
                return
            sale = self._sale
            if self._phase is Phase.BASKET and sale is not None:
                await self._show(views.basket(sale))
            elif self._phase is Phase.PAYING and sale is not None:
                await self._show(views.paying(sale, self._method))
            elif self._phase is Phase.IDLE:
                await self._show(views.welcome(self._settings.shop_name))

    async def _show_sales_stopped(self) -> None:
        await self._show(
            views.notice(self._sale, self._settings.shop_name, M.SALES_STOPPED_ASK_STAFF, "error")
        )
        self._stopped_shown = True

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

    async def _watch_inactivity(self) -> None:
        timeout = self._settings.inactivity_timeout_s
        while True:
            self._activity.clear()
            if self._phase is not Phase.BASKET:
                await self._activity.wait()
                continue
            remaining = self._last_activity + timeout - self._store.clock.monotonic()
            if remaining > 0:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                # that races with the event being set, and the task would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._activity.wait()
                continue
            await self._expire()

    async def _expire(self) -> None:
        async with self._lock:
            sale = self._sale
            idle_for = self._store.clock.monotonic() - self._last_activity
            if self._phase is not Phase.BASKET or sale is None:
                return
            if idle_for < self._settings.inactivity_timeout_s:
                return
            try:
                async with self._store.transaction() as tx:
                    await move(tx, sale.id, SaleState.ABANDONED, only_from=(SaleState.BASKET,))
            except StoreUnwritable:
                self._touch()  # the basket stays; it times out again later
                return
            log.info("basket abandoned after inactivity", extra={"sale": sale.id})
            self._enter(Phase.IDLE, None)
            notice = M.BASKET_TIMED_OUT
            await self._show(views.welcome(self._settings.shop_name, notice))

    async def _refresh(self, sale_id: str, headline: str | None = None) -> None:
        sale = await load_sale(self._store, sale_id)
        if sale is None or sale.state not in (SaleState.BASKET, SaleState.PAYING):
            return
        phase = Phase.PAYING if sale.state is SaleState.PAYING else Phase.BASKET
        self._enter(phase, sale)
        await self._show(views.basket(sale, headline=headline))

    def _basket_sale(self) -> Sale:
        if self._phase is Phase.PAYING:
            raise CheckoutError("the basket cannot change while paying")
        if self._sale is None or self._phase is not Phase.BASKET:
            raise CheckoutError("there is no basket")
        return self._sale

    def _check_new_sale_allowed(self) -> None:
        if not self._sales_allowed():
            raise CheckoutError(M.SALES_STOPPED)
        if not self._recovered.is_set() or self._payments.busy():
            raise CheckoutError(M.PREVIOUS_PAYMENT_PENDING)

    def _check_limit(self, total_fen: int) -> None:
        if total_fen > self._settings.max_sale_fen:
            raise CheckoutError(M.SALE_LIMIT)

    async def _reload(self, tx: Transaction, sale_id: str) -> Sale:
        sale = await load_sale(tx, sale_id)
        assert sale is not None
        return sale

    def _enter(self, phase: Phase, sale: Sale | None) -> None:
        self._phase = phase
        self._sale = sale
        if phase is not Phase.PAYING:
            self._method = None
        self._touch()

    def _touch(self) -> None:
        self._last_activity = self._store.clock.monotonic()
        self._activity.set()

    def _count_scan(self) -> None:
        self.scans_handled += 1
        event, self._scan_event = self._scan_event, asyncio.Event()
        event.set()

    async def _show(self, view: DisplayView) -> None:
        """The display failing never undoes a committed fact; it is reported and skipped."""
        self.last_view = view
        self._stopped_shown = False
        try:
            await self._display.show(view)
        except DeviceError as exc:
            log.warning("display failed", extra={"reason": str(exc)})


def _reason(settlement: Settlement) -> str:
    if settlement.outcome is PaymentOutcome.CANCELLED:
        return M.CANCELLED_REASON
    return settlement.reason or M.DECLINED
