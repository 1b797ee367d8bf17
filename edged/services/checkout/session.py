"""The checkout session's state and what the shopper sees of it.

`CheckoutSession` holds the phase (idle -> basket -> paying -> paid -> receipt -> idle), the
sale on screen and the helpers every flow uses: enter a phase, reload the committed sale,
show a view. A display failure never undoes a committed fact.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from edged.services.checkout import messages as M
from edged.services.checkout import views
from edged.services.payments.protocol import PaymentMethod, Payments
from edged.services.printing.queue import PrintQueue
from edged.services.sales.ledger import SalesLedger
from edged.services.sales.records import Sale, SaleState, load_sale
from edged.store import Store, Transaction
from hal.display.protocol import Display, show_or_log
from hal.display.view import DisplayView

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


class CheckoutSession:
    """State shared by the basket (service.py) and the payment flow (paying.py)."""

    _store: Store
    _sales: SalesLedger
    _display: Display
    _print_queue: PrintQueue
    _settings: CheckoutSettings
    _sales_allowed: Callable[[], bool]
    _payments: Payments
    _lock: asyncio.Lock
    _phase: Phase
    _sale: Sale | None
    _method: PaymentMethod | None
    _paid_sale: str | None
    _recovered: asyncio.Event
    _activity: asyncio.Event
    _last_activity: float
    _after_commit: set[asyncio.Task[None]]
    _scan_event: asyncio.Event
    scans_handled: int
    last_view: DisplayView | None
    _orphaned: bool
    _stopped_shown: bool

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def sale(self) -> Sale | None:
        return self._sale

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
        await show_or_log(self._display, view, log)

    async def _show_sales_stopped(self) -> None:
        await self._show(
            views.notice(self._sale, self._settings.shop_name, M.SALES_STOPPED_ASK_STAFF, "error")
        )
        self._stopped_shown = True
