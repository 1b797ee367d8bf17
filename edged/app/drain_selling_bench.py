"""`edged bench drain --while-selling`: a backlog drains while a shopper keeps buying.

One process, one event loop, one store, as in the daemon: the real link drains a backlog of
N `evt/txn` messages to a local Mosquitto while checkout (scanner -> cart line -> display,
payment row, durable sale commit with its outbox row, receipt) sells as a fast shopper
would, one scan every `scan_interval_s`. Measured in the same run:

- raw: paho-mqtt alone publishing N messages at QoS 1 to the same broker (the better of the
  link's window and a wide one, as `bench drain` does);
- drain: N / seconds from the link's start to the last backlog row marked delivered;
- the shopper's scan and sale-commit latencies, only while the backlog drained;
- money first: how long each sale's own `evt/txn` waited in the outbox behind the backlog;
- CPU the hypervisor stole and the run queue (load average), which move every figure here.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from edged.link.drain_bench import (
    BENCH_TOPICS,
    bench_broker,
    bench_link,
    fill_backlog,
    raw_baseline,
)
from edged.runtime.clock import SystemClock
from edged.runtime.heap import freeze_startup_heap
from edged.services.checkout.bench import Percentiles, Shopper, cpu_ticks, steal_percent
from edged.store import Store
from edged.store.outbox import Outbox


@dataclass(frozen=True)
class DrainWhileSellingResult:
    messages: int
    window: int
    raw_rate: float
    drain_rate: float
    scan: Percentiles
    commit: Percentiles
    sales: int
    txn_wait: Percentiles
    """From a sale's commit to its own `evt/txn` being marked delivered, during the drain."""
    steal_percent: float | None
    load_average: float
    cpu_ms_per_message: float
    raw_cpu_ms_per_message: float
    """The same for raw paho: CPU, unlike rates, hardly moves with the machine's load."""

    @property
    def ratio(self) -> float:
        return self.drain_rate / self.raw_rate


def run_drain_while_selling(
    messages: int,
    window: int,
    scan_interval_s: float,
    scans_per_sale: int = 5,
    host: str | None = None,
    port: int | None = None,
) -> DrainWhileSellingResult:
    ticks = cpu_ticks()
    with tempfile.TemporaryDirectory(prefix="edged-bench-") as tmp:
        work = Path(tmp)
        with bench_broker(work, host, port) as (host, port):
            raw, raw_cpu_ms = raw_baseline(host, port, messages, window)
            measured = asyncio.run(
                _drain_while_selling(
                    host, port, messages, window, work, scan_interval_s, scans_per_sale
                )
            )
        shutil.rmtree(work / "printer", ignore_errors=True)
    drain, shopper, txn_wait, cpu_ms = measured
    return DrainWhileSellingResult(
        messages,
        window,
        raw,
        drain,
        Percentiles.of(shopper.scan_s),
        Percentiles.of(shopper.commit_s),
        shopper.sold,
        Percentiles.of(txn_wait) if txn_wait else Percentiles(0, 0.0, 0.0, 0.0),
        steal_percent(ticks, cpu_ticks()),
        os.getloadavg()[0],
        cpu_ms,
        raw_cpu_ms,
    )


async def _drain_while_selling(
    host: str,
    port: int,
    messages: int,
    window: int,
    work: Path,
    scan_interval_s: float,
    scans_per_sale: int,
) -> tuple[float, Shopper, list[float], float]:
    store = await Store.open(work / "bench.db", SystemClock())
    try:
        outbox = Outbox(store, BENCH_TOPICS)
        await fill_backlog(store, outbox, messages)
        row = await store.fetchone("SELECT MAX(seq) FROM outbox")
        last_backlog = int(row[0]) if row is not None else 0
        shopper = await Shopper.build(store, outbox, work, scans_per_sale)
        link = bench_link(store, outbox, host, port, window)
        freeze_startup_heap()
        draining = True

        async def shop() -> None:
            while draining:
                await shopper.sell_one(scan_interval_s)

        cpu_before = time.process_time()
        started = time.perf_counter()
        link_task = asyncio.create_task(link.run())
        shop_task = asyncio.create_task(shop())
        while link.pump.stats.delivered < messages or link.pump.in_flight:
            for task in (link_task, shop_task):
                if task.done():
                    task.result()
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        cpu_ms = (time.process_time() - cpu_before) * 1000 / messages
        draining = False
        await shop_task
        left = await store.fetchone(
            "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL AND seq <= ?",
            (last_backlog,),
        )
        # The shopper's sales are delivered too once the backlog is: wait for the last few.
        for _ in range(3000):
            if not (await outbox.stats()).depth:
                break
            await asyncio.sleep(0.01)
        waits = await store.fetchall(
            "SELECT created_at, delivered_at FROM outbox WHERE seq > ? AND topic LIKE '%/evt/txn'"
            " AND delivered_at IS NOT NULL",
            (last_backlog,),
        )
        link_task.cancel()
        await asyncio.gather(link_task, return_exceptions=True)
        await shopper.close()
        if left is not None and left[0]:
            raise RuntimeError(f"drain finished with {left[0]} backlog rows undelivered")
        return messages / elapsed, shopper, [_seconds(w[0], w[1]) for w in waits], cpu_ms
    finally:
        await store.close()


def _seconds(created_at: str, delivered_at: str) -> float:
    from edged.contract.envelope import parse_rfc3339

    return max(0.0, (parse_rfc3339(delivered_at) - parse_rfc3339(created_at)).total_seconds())
