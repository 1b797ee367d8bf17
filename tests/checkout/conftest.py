from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from edged.contract.topics import DeviceTopics
from edged.services.checkout.service import Checkout, CheckoutSettings
from edged.services.printing.queue import PrintQueue
from edged.services.sales.ledger import SalesLedger
from edged.services.stock.catalog import Catalog
from edged.store import Store
from edged.store.outbox import Outbox
from hal.display.sim import SimulatedDisplay
from hal.printer.protocol import Printer
from hal.printer.sim import SimulatedPrinter
from hal.scanner.protocol import Scan
from tests.checkout.doubles import PaymentsDouble
from tests.support.polling import until

WATER = "6901028075831"  # 农夫山泉 饮用天然水 550ml, 200 fen, stock 120
COLA = "6934567890122"  # 可口可乐 330ml, 350 fen, stock 96
GUM = "69012341"  # 绿箭 口香糖 5片 (EAN-8), 250 fen
WECHAT_CODE = "134567890123456789"
ALIPAY_CODE = "286543210987654321"


class TestClock:
    """Wall time from the system, monotonic time the test can move forward."""

    __test__ = False

    def __init__(self) -> None:
        from edged.runtime.clock import SystemClock

        self._system = SystemClock()
        self.offset = 0.0
        self.is_synced = True

    def now(self):  # type: ignore[no-untyped-def]
        return self._system.now()

    def monotonic(self) -> float:
        return self._system.monotonic() + self.offset

    def synced(self) -> bool:
        return self.is_synced


@dataclass
class Kiosk:
    """Checkout with its real parts (on-disk store, simulated display and printer)."""

    path: Path
    clock: TestClock
    store: Store
    outbox: Outbox
    display: SimulatedDisplay
    printer: Any
    """SimulatedPrinter unless a test brings a real driver."""
    queue: PrintQueue
    checkout: Checkout
    payments: PaymentsDouble
    allowed: list[bool] = field(default_factory=lambda: [True])
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stopped: bool = False

    async def scan(self, text: str, source: str = "scanner") -> None:
        await self.checkout.handle_scan(Scan(text, source, self.clock.monotonic()))

    @property
    def headline(self) -> str:
        assert self.display.current is not None
        return self.display.current.headline

    def start(self, *runners: Callable[[], Awaitable[None]]) -> None:
        for runner in runners:
            self.tasks.append(asyncio.ensure_future(runner()))

    async def stop(self) -> None:
        """Stop as a crash would: tasks cancelled, nothing flushed beyond what committed."""
        if self.stopped:
            return
        self.stopped = True
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        await self.checkout.close()
        await self.store.close()


KioskFactory = Callable[..., Awaitable[Kiosk]]


@pytest.fixture
async def make_kiosk(tmp_path: Path) -> AsyncIterator[KioskFactory]:
    made: list[Kiosk] = []

    async def make(
        *,
        timeout_s: float = 120.0,
        paper_mm: int = 80,
        max_sale_fen: int = 1_000_000,
        printing: bool = True,
        printer: Printer | None = None,
    ) -> Kiosk:
        clock = TestClock()
        store = await Store.open(tmp_path / "edged.db", clock)
        outbox = Outbox(store, DeviceTopics("s1", "k1"))
        catalog = Catalog(store)
        await catalog.seed_if_empty(None)
        display = SimulatedDisplay()
        printer = printer or SimulatedPrinter(tmp_path / "printer", paper_mm)
        queue = PrintQueue(store, printer, retry_initial_s=0.01, retry_max_s=0.05)
        allowed = [True]
        ledger = SalesLedger(store, outbox, queue)
        payments = PaymentsDouble(store, ledger)
        await payments.load_open()
        checkout = Checkout(
            store,
            display,
            queue,
            CheckoutSettings(
                "便利店 Test Shop", "https://mp.example.com/o/", timeout_s, max_sale_fen
            ),
            sales_allowed=lambda: allowed[0],
            payments=payments,
            sales=ledger,
        )
        await checkout.resume()
        kiosk = Kiosk(
            tmp_path, clock, store, outbox, display, printer, queue, checkout, payments, allowed
        )
        made.append(kiosk)
        kiosk.start(checkout.run)
        if printing:
            kiosk.start(queue.run)
        await eventually(lambda: _recovered(checkout))
        return kiosk

    yield make
    for kiosk in made:
        await kiosk.stop()


async def _recovered(checkout: Checkout) -> bool:
    return bool((await checkout.status())["recovered"])


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 3.0) -> None:
    """Polls committed state, as a user would: the suite's bounded poll."""
    await until(check, within_s)
