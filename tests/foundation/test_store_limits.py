"""A store near its limit sheds telemetry first; a full one stops sales and keeps every fact."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from edged.config.models import StoreLimits
from edged.contract.topics import DeviceTopics, Uplink
from edged.runtime.clock import SystemClock
from edged.store import Store
from edged.store.maintenance import StoreMaintenance
from edged.store.outbox import Outbox
from tests.support.polling import until

TOPICS = DeviceTopics("site-1", "kiosk-1")
FILLER = "x" * 20_000


async def fill(store: Store, outbox: Outbox, kind: Uplink, rows: int) -> None:
    async with store.transaction() as tx:
        for n in range(rows):
            await outbox.add(tx, kind, "filler", {"n": n, "pad": FILLER})


async def test_telemetry_is_shed_before_sales_stop_and_money_is_never_dropped(
    tmp_path: Path,
) -> None:
    store = await Store.open(tmp_path / "edged.db", SystemClock())
    outbox = Outbox(store, TOPICS)
    limits = StoreLimits(max_db_mb=8, shed_telemetry_at_pct=50, stop_sales_at_pct=90)
    guard = StoreMaintenance(store, outbox, limits, retention_hours=72)
    try:
        await fill(store, outbox, Uplink.HEALTH, 250)  # ~5 MB of unsent telemetry
        await fill(store, outbox, Uplink.TXN, 50)  # ~1 MB of unsent sales

        await guard.check()

        depth = {
            r[0]: r[1]
            for r in await store.fetchall("SELECT priority, COUNT(*) FROM outbox GROUP BY priority")
        }
        assert depth == {0: 50}, "telemetry went, every sale message stayed"
        assert guard.sales_allowed and guard.alarm == ""

        await fill(store, outbox, Uplink.TXN, 330)  # sales alone pass 90 % of 8 MB
        await guard.check()

        assert not guard.sales_allowed
        assert "of its 8 MB limit" in guard.alarm
        [(money,)] = await store.fetchall("SELECT COUNT(*) FROM outbox WHERE priority = 0")
        assert money == 380, "a full store drops no stored fact"
        status = await guard.status()
        assert status["sales_allowed"] is False and status["outbox_depth"] == 380

        async with store.transaction() as tx:  # the backlog drains and is pruned
            await tx.execute("DELETE FROM outbox")
        await guard.check()
        assert guard.sales_allowed and guard.alarm == ""
    finally:
        await store.close()


async def test_sales_resume_within_seconds_once_a_nearly_full_disk_has_room_again(
    tmp_path: Path,
) -> None:
    # A small write can still commit on a full disk, so the store's write failure clears
    # while the disk stays full: the alarm then reads "disk nearly full" and must be
    # rechecked at the recovery pace, not at the next 30 s round.
    store = await Store.open(tmp_path / "edged.db", SystemClock())
    outbox = Outbox(store, TOPICS)
    free = {"bytes": 0}
    guard = StoreMaintenance(
        store, outbox, StoreLimits(), retention_hours=72, free_bytes=lambda _path: free["bytes"]
    )
    rounds = asyncio.create_task(guard.run())
    try:
        await until(lambda: guard.alarm == "disk nearly full: 0 MB free", within_s=3)
        assert not guard.sales_allowed
        assert store.unwritable == "", "no write failed: the alarm alone keeps the pace up"

        free["bytes"] = 1 << 30
        await until(lambda: guard.sales_allowed, within_s=3, what="sales allowed again")
        assert guard.alarm == ""
    finally:
        rounds.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await rounds
        await store.close()
