"""`edged bench checkout`: the two checkout latency budgets, on a real on-disk store.

1. Scan -> committed cart line -> display updated: from the moment the reader stamped the
   scan (`Scan.at`) until `handle_scan` returned, which is after the basket change committed
   (fsync, synchronous=FULL) and the display showed it. Budget p99 <= 10 ms.
2. Durable sale commit: the one transaction in which payments records SUCCESS and checkout
   completes the sale (sale row, stock decrements, `evt/txn` outbox row, print job), through
   COMMIT with its fsync. Budget p99 <= 5 ms.

No payments service takes part: the bench writes the payment row and calls the sales ledger's
`settle()` inside one transaction exactly as payments does, so only checkout's own work is
measured (`_SettledByTheBench` stands where payments would: never busy, nothing to recover).
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from edged.contract.ids import new_id
from edged.contract.topics import DeviceTopics
from edged.runtime.clock import SystemClock
from edged.runtime.heap import freeze_startup_heap
from edged.services.checkout.service import Checkout, CheckoutSettings
from edged.services.payments.protocol import NativeQr, PaymentMethod, PaymentOutcome, Settlement
from edged.services.printing.queue import PrintQueue
from edged.services.sales.ledger import SalesLedger
from edged.services.sales.records import SaleState, move
from edged.services.stock.catalog import Catalog
from edged.store import Statements, Store
from edged.store.outbox import Outbox
from hal.display.sim import SimulatedDisplay
from hal.printer.sim import SimulatedPrinter
from hal.scanner.protocol import Scan

SCAN_BUDGET_MS = 10.0
COMMIT_BUDGET_MS = 5.0


@dataclass(frozen=True)
class Percentiles:
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, samples_s: list[float]) -> Percentiles:
        ms = sorted(s * 1000 for s in samples_s)
        p99 = ms[min(len(ms) - 1, max(0, round(0.99 * len(ms)) - 1))]
        return cls(len(ms), statistics.median(ms), p99, ms[-1])


@dataclass(frozen=True)
class CheckoutBenchResult:
    scan: Percentiles
    commit: Percentiles
    store_path: Path
    bare_commit: Percentiles
    """The machine's floor, same run, same folder: a one-row WAL commit with fsync, one hop."""
    bare_hop: Percentiles
    """The machine's floor: one round trip to aiosqlite's thread that does nothing."""
    steal_percent: float | None
    """CPU time the hypervisor gave other guests during the run (Linux /proc/stat), in
    percent of all CPU time: what makes the same run's tail differ from one run to the next."""
    cpu_per_sale_ms: float = 0.0
    """Process CPU time (every thread: loop, SQLite, printing) over the run / sales."""


async def run_checkout_bench(
    sales: int, scans_per_sale: int, directory: Path | None = None
) -> CheckoutBenchResult:
    work = Path(tempfile.mkdtemp(prefix="edged-bench-", dir=directory))
    before = cpu_ticks()
    try:
        return await _measure(work, sales, scans_per_sale, before)
    finally:
        shutil.rmtree(work, ignore_errors=True)


class _SettledByTheBench:
    """Where payments would be: the bench settles each sale itself (see the module doc)."""

    async def pay_by_code(self, sale_id: str, amount_fen: int, code: str) -> str:
        raise NotImplementedError("the bench settles sales itself")

    async def pay_by_qr(self, sale_id: str, amount_fen: int) -> NativeQr:
        raise NotImplementedError("the bench settles sales itself")

    async def cancel(self, sale_id: str) -> None:
        raise NotImplementedError("the bench settles sales itself")

    async def recover(self) -> None:
        return None

    def busy(self) -> bool:
        return False


@dataclass
class Shopper:
    """Checkout, sales ledger and print queue on a store, selling as fast as asked: what
    both `bench checkout` and `bench drain --while-selling` drive. Samples go to `scan_s`
    and `commit_s`."""

    store: Store
    checkout: Checkout
    ledger: SalesLedger
    queue: PrintQueue
    printer: asyncio.Task[None]
    """The print worker, as the daemon runs it: every sale's receipt is laid out and printed."""
    products: list[str]
    scans_per_sale: int
    scan_s: list[float]
    commit_s: list[float]
    sold: int = 0

    @classmethod
    async def build(cls, store: Store, outbox: Outbox, work: Path, scans_per_sale: int) -> Shopper:
        catalog = Catalog(store)
        await catalog.seed_if_empty(None)
        products = [row["barcode"] for row in await store.fetchall("SELECT barcode FROM products")]
        async with store.transaction() as tx:  # plenty of stock: the bench sells a lot
            await tx.execute("UPDATE stock SET quantity = 1000000")
        queue = PrintQueue(store, SimulatedPrinter(work / "printer"))
        ledger = SalesLedger(store, outbox, queue)
        checkout = Checkout(
            store,
            SimulatedDisplay(keep=8),
            queue,
            CheckoutSettings("bench", "https://mp.example.com/o/", 3600, 10**9),
            sales_allowed=lambda: True,
            payments=_SettledByTheBench(),
            sales=ledger,
        )
        await checkout.resume()
        await checkout.recover()
        printer = asyncio.create_task(queue.run(), name="bench:printer")
        return cls(store, checkout, ledger, queue, printer, products, scans_per_sale, [], [])

    async def receipts_printed(self, within_s: float = 60.0) -> None:
        deadline = time.monotonic() + within_s
        while (await self.queue.status())["queued"]:
            if time.monotonic() > deadline:
                raise TimeoutError("the bench's receipts did not print")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        self.printer.cancel()
        await asyncio.gather(self.printer, return_exceptions=True)
        await self.checkout.close()

    async def sell_one(self, pause_s: float = 0.0) -> None:
        """Scan a basket (waiting `pause_s` before each scan), pay, settle durably."""
        n, store, checkout = self.sold, self.store, self.checkout
        for i in range(self.scans_per_sale):
            if pause_s:
                await asyncio.sleep(pause_s)
            code = self.products[(n + i) % len(self.products)]
            scan = Scan(code, "scanner", time.monotonic())
            await checkout.handle_scan(scan)
            self.scan_s.append(time.monotonic() - scan.at)
        sale = checkout.sale
        assert sale is not None and sale.state is SaleState.BASKET
        trade_no = new_id().replace("-", "")
        async with store.transaction() as tx:  # what checkout + payments do before paying
            await move(tx, sale.id, SaleState.PAYING, only_from=(SaleState.BASKET,))
            await tx.execute(
                "INSERT INTO payments (trade_no, sale_id, method, amount_fen, state, "
                "created_at, updated_at) VALUES (?, ?, 'wechat', ?, 'user_paying', ?, ?)",
                (trade_no, sale.id, sale.total_fen, tx.now, tx.now),
            )
        settlement = Settlement(
            sale.id, trade_no, PaymentMethod.WECHAT, sale.total_fen, PaymentOutcome.PAID
        )
        ledger = self.ledger
        started = time.monotonic()

        def pay_and_settle(s: Statements) -> None:
            s.execute(
                "UPDATE payments SET state = 'paid', updated_at = ? WHERE trade_no = ?",
                (s.now, trade_no),
            )
            ledger.settle(s, settlement)

        async with store.transaction() as tx:  # as the link and payments do: one hop
            tx.defer(pay_and_settle)
        self.commit_s.append(time.monotonic() - started)
        await checkout.settled()  # the thank-you shows before the next shopper scans
        self.sold += 1


async def _measure(
    work: Path, sales: int, scans_per_sale: int, ticks_before: tuple[int, int] | None
) -> CheckoutBenchResult:
    store = await Store.open(work / "edged.db", SystemClock())
    try:
        outbox = Outbox(store, DeviceTopics("bench", "bench"))
        shopper = await Shopper.build(store, outbox, work, scans_per_sale)
        freeze_startup_heap()  # as the daemon does once it is ready
        cpu_before = time.process_time()
        for _ in range(sales):
            await shopper.sell_one()
        await shopper.receipts_printed()
        cpu_per_sale_ms = (time.process_time() - cpu_before) * 1000 / sales
        await shopper.close()
        bare_commit, bare_hop = await _floor(work / "floor.db", len(shopper.commit_s))
        return CheckoutBenchResult(
            Percentiles.of(shopper.scan_s),
            Percentiles.of(shopper.commit_s),
            work,
            bare_commit,
            bare_hop,
            steal_percent(ticks_before, cpu_ticks()),
            cpu_per_sale_ms,
        )
    finally:
        await store.close()


async def _floor(path: Path, samples: int) -> tuple[Percentiles, Percentiles]:
    """What the disk and the thread hop alone cost here, so the budget can be read against
    the machine: on a shared VM both drift by several times within minutes."""
    floor = await Store.open(path, SystemClock())
    commits: list[float] = []
    hops: list[float] = []
    try:
        for n in range(samples):

            def one_row(s: Statements, name: str = str(n)) -> int:
                return s.insert("INSERT INTO sequences (name, value) VALUES (?, 0)", (name,))

            started = time.monotonic()
            async with floor.transaction() as tx:  # one hop, like the sale commit
                tx.defer(one_row)
            commits.append(time.monotonic() - started)
            started = time.monotonic()
            await floor.fetchone("SELECT 1")
            hops.append(time.monotonic() - started)
    finally:
        await floor.close()
    return Percentiles.of(commits), Percentiles.of(hops)


def cpu_ticks() -> tuple[int, int] | None:
    """(steal, total) jiffies of all CPUs so far, or None where /proc/stat is missing."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user]
    return (fields[7], sum(fields[:8])) if len(fields) >= 8 else None


def steal_percent(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    if before is None or after is None or after[1] <= before[1]:
        return None
    return 100.0 * (after[0] - before[0]) / (after[1] - before[1])
