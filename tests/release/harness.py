"""A vending counter's release side with real parts: an on-disk store, the release service,
a RelayDoor over the simulated relay and a hand-moved simulated door. Sales are rows a test
pays through the settlement sink, as payments does inside its transaction."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from edged.contract.envelope import rfc3339
from edged.contract.topics import DeviceTopics
from edged.runtime.clock import SystemClock
from edged.services.payments.protocol import PaymentMethod, PaymentOutcome, Settlement
from edged.services.release.service import ReleaseOnPaid, ReleaseService, ReleaseSettings
from edged.store import Statements, Store
from edged.store.outbox import Outbox
from hal.display.sim import SimulatedDisplay
from hal.release.door import RelayDoor
from hal.release.sim import SimulatedDoorSensor, SimulatedRelay


class MarkPaid:
    """Checkout's side of a settlement, reduced to what matters here: the sale turns paid."""

    def __init__(self) -> None:
        self.refuse = False

    def settle(self, s: Statements, settlement: Settlement) -> None:
        if self.refuse:
            raise RuntimeError("checkout rejected the settlement")
        if settlement.outcome is PaymentOutcome.PAID:
            s.execute(
                "UPDATE sales SET state = 'paid', completed_at = ? WHERE id = ?",
                (s.now, settlement.sale_id),
            )

    async def progress(self, sale_id: str, message: str) -> None:
        return None


@dataclass
class Counter:
    path: Path
    store: Store
    outbox: Outbox
    relay: SimulatedRelay
    door: SimulatedDoorSensor
    device: RelayDoor
    display: SimulatedDisplay
    service: ReleaseService
    sink: ReleaseOnPaid
    inner: MarkPaid
    task: asyncio.Task[None] | None = None
    sales: int = field(default=0)

    def start(self) -> None:
        self.task = asyncio.create_task(self.service.run())

    async def stop(self) -> None:
        """As a crash would: the task cancelled, nothing flushed beyond what committed."""
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.store.close()

    async def new_sale(self) -> str:
        self.sales += 1
        sale_id = f"sale-{self.sales}"
        async with self.store.transaction() as tx:
            await tx.execute(
                "INSERT INTO sales (id, seq, state, total_fen, created_at, clock_synced, "
                "updated_at) VALUES (?, ?, 'paying', 500, ?, 1, ?)",
                (sale_id, self.sales, tx.now, tx.now),
            )
        return sale_id

    async def pay(self, sale_id: str, outcome: PaymentOutcome = PaymentOutcome.PAID) -> None:
        """What payments does on a final result: settle inside its own transaction."""
        settlement = Settlement(sale_id, f"T{sale_id}xxxxxxx", PaymentMethod.WECHAT, 500, outcome)
        async with self.store.transaction() as tx:
            await tx.run(lambda s: self.sink.settle(s, settlement))

    async def releases(self) -> list[dict[str, Any]]:
        rows = await self.store.fetchall(
            "SELECT id, sale_id, slot, state, reason, ended_at FROM releases ORDER BY id"
        )
        return [dict(row) for row in rows]

    async def state(self, sale_id: str) -> str | None:
        row = await self.store.fetchone("SELECT state FROM releases WHERE sale_id = ?", (sale_id,))
        return None if row is None else str(row[0])

    async def reports(self) -> list[tuple[str, str, bool]]:
        """Every txn.release in the outbox: (sale, state, refund marked), in order."""
        rows = await self.store.fetchall(
            "SELECT payload FROM outbox WHERE topic LIKE '%/evt/txn' ORDER BY seq"
        )
        out = []
        for row in rows:
            envelope = json.loads(row[0])
            if envelope["type"] == "txn.release":
                body = envelope["body"]
                out.append((body["sale_id"], body["state"], body["refund_marked"]))
        return out

    async def refund_marks(self) -> list[dict[str, Any]]:
        rows = await self.store.fetchall("SELECT sale_id, reason FROM refund_marks ORDER BY 1")
        return [dict(row) for row in rows]

    async def age_payment(self, sale_id: str, seconds: float) -> None:
        """Pretend the sale was paid `seconds` ago (a restart after that long)."""
        async with self.store.transaction() as tx:
            await tx.execute(
                "UPDATE releases SET paid_at = ? WHERE sale_id = ?",
                (rfc3339(self.store.clock.now() - timedelta(seconds=seconds)), sale_id),
            )

    @property
    def headline(self) -> str:
        current = self.display.current
        return "" if current is None else current.headline


CounterFactory = Callable[..., Awaitable[Counter]]


async def make_counter(
    path: Path,
    *,
    open_within_s: float = 5.0,
    left_open_s: float = 5.0,
    restart_window_s: float = 60.0,
    start: bool = True,
) -> Counter:
    store = await Store.open(path / "edged.db", SystemClock())
    outbox = Outbox(store, DeviceTopics("s1", "vend-1"))
    relay = SimulatedRelay()
    door = SimulatedDoorSensor(1, shopper="manual")
    device = RelayDoor(relay, door, 1)
    display = SimulatedDisplay()
    service = ReleaseService(
        store,
        outbox,
        device,
        display,
        ReleaseSettings(
            door_slot=1,
            open_within_s=open_within_s,
            left_open_s=left_open_s,
            restart_window_s=restart_window_s,
        ),
    )
    inner = MarkPaid()
    counter = Counter(path, store, outbox, relay, door, device, display, service,
                      service.wrap(inner), inner)  # fmt: skip
    if start:
        counter.start()
    return counter


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 3.0) -> None:
    async with asyncio.timeout(within_s):
        while not await check():  # noqa: ASYNC110 - polls committed state, as a user would
            await asyncio.sleep(0.01)
