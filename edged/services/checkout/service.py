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
from edged.services.checkout.paying import PaymentFlow
from edged.services.checkout.receipt import ReceiptRenderer
from edged.services.checkout.session import CheckoutError, CheckoutSettings, Phase
from edged.services.payments.protocol import PaymentMethod, Payments
from edged.services.printing.queue import RECEIPT, PrintQueue
from edged.services.sales.ledger import SalesLedger
from edged.services.sales.records import (
    LOAD_SALE_SQL,
    Sale,
    SaleState,
    add_product,
    create_sale,
    find_open_sale,
    sale_from_rows,
    set_quantity,
    void_line,
)
from edged.store import Statements, Store, StoreUnwritable
from hal.display.protocol import Display
from hal.display.view import DisplayView
from hal.scanner.protocol import Scan

log = logging.getLogger("edged.checkout")

__all__ = ["Checkout", "CheckoutError", "CheckoutSettings", "Phase"]


class Checkout(PaymentFlow):
    """The basket and its lifecycle; the payment flow is in `paying.py`, the state and
    display helpers in `session.py`."""

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

    def reconfigure(self, settings: CheckoutSettings) -> None:
        """New texts, limits and timeouts, from the next scan or tick on (remote config)."""
        self._settings = settings

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

    async def close(self) -> None:
        for task in list(self._after_commit):
            task.cancel()
        await asyncio.gather(*self._after_commit, return_exceptions=True)

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
                    await tx.run(
                        lambda s: self._sales.void_now(
                            s, sale.id, SaleState.CANCELLED, only_from=(SaleState.BASKET,)
                        )
                    )
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

    async def _watch_inactivity(self) -> None:
        while True:
            self._activity.clear()
            if self._phase is not Phase.BASKET:
                await self._activity.wait()
                continue
            timeout = self._settings.inactivity_timeout_s  # read each time: it may change live
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
                    await tx.run(
                        lambda s: self._sales.void_now(
                            s, sale.id, SaleState.ABANDONED, only_from=(SaleState.BASKET,)
                        )
                    )
            except StoreUnwritable:
                self._touch()  # the basket stays; it times out again later
                return
            log.info("basket abandoned after inactivity", extra={"sale": sale.id})
            self._enter(Phase.IDLE, None)
            notice = M.BASKET_TIMED_OUT
            await self._show(views.welcome(self._settings.shop_name, notice))
