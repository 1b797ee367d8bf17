"""Keeps the store bounded: prunes delivered outbox rows, watches size, raises the alarm.

A store past its limit must stop new sales before it corrupts old ones; telemetry is shed
first. `sales_allowed` is what the checkout consults before it opens a sale.

A disk that is really full (SQLite answers SQLITE_FULL, or an I/O error) is noticed at
once, not at the next round: the store tells this guard the moment any write fails, the
alarm goes up and `on_change` listeners (checkout's display, the health report) hear it.
While any alarm is up the guard checks every `RECOVERY_INTERVAL_S` (with a tiny probe
write while the last write failed), so sales resume by themselves within a second or two
once there is room. A small write may still commit on a full disk (it fits in a page
SQLite already holds); that clears the store's failure but not the alarm, which then says
"disk nearly full" and must be rechecked just as often, not at the next 30 s round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from edged.config.models import StoreLimits
from edged.store.database import Store, StoreUnwritable
from edged.store.outbox import Outbox

log = logging.getLogger("edged.store")

CHECK_INTERVAL_S = 30.0
RECOVERY_INTERVAL_S = 1.0
MIN_FREE_DISK_BYTES = 32 * 1024 * 1024
PROBE_SQL = (
    "INSERT INTO sequences (name, value) VALUES ('store.write_probe', 1) "
    "ON CONFLICT (name) DO UPDATE SET value = value + 1"
)


class StoreMaintenance:
    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        limits: StoreLimits,
        retention_hours: float,
        interval_s: float = CHECK_INTERVAL_S,
        free_bytes: Callable[[Path], int] = lambda path: shutil.disk_usage(path).free,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._limits = limits
        self._retention = timedelta(hours=retention_hours)
        self._interval_s = interval_s
        self._free_bytes = free_bytes
        self.sales_allowed = True
        self.alarm = ""
        self._listeners: list[Callable[[str], None]] = []
        self._wake = asyncio.Event()
        store.on_write_trouble(self._write_trouble)

    def on_change(self, listener: Callable[[str], None]) -> None:
        """`listener(alarm)` runs whenever the alarm changes ("" when sales are allowed)."""
        self._listeners.append(listener)

    async def run(self) -> None:
        while True:
            await self.check()
            self._wake.clear()
            recovering = self._store.unwritable or self.alarm
            interval = RECOVERY_INTERVAL_S if recovering else self._interval_s
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()

    def _write_trouble(self, reason: str) -> None:
        if reason:
            self._set_alarm(f"store cannot write: {reason}")
        self._wake.set()

    async def check(self) -> None:
        """One round: prune, measure, and set or clear the alarm. A disk too full to write
        keeps the alarm up (the round's writes fail); any other SQLite failure raises."""
        try:
            await self._check()
        except StoreUnwritable as exc:
            self._set_alarm(f"store cannot write: {exc.reason}")

    async def _check(self) -> None:
        if self._store.unwritable:
            async with self._store.transaction() as tx:
                await tx.execute(PROBE_SQL)
        await self._outbox.prune_delivered(self._store.clock.now() - self._retention)
        limit = self._limits.max_db_mb * 1024 * 1024
        used_pct = 100 * await self._store.used_bytes() / limit
        free = self.disk_free_bytes()
        if used_pct >= self._limits.shed_telemetry_at_pct:
            shed = await self._outbox.shed_telemetry()
            if shed:
                log.warning("store nearly full: telemetry shed", extra={"rows": shed})
                used_pct = 100 * await self._store.used_bytes() / limit
        alarm = ""
        if used_pct >= self._limits.stop_sales_at_pct:
            alarm = f"store {used_pct:.0f}% of its {self._limits.max_db_mb} MB limit"
        elif free < MIN_FREE_DISK_BYTES:
            alarm = f"disk nearly full: {free // (1024 * 1024)} MB free"
        self._set_alarm(alarm)

    def _set_alarm(self, alarm: str) -> None:
        if alarm == self.alarm:
            return
        if alarm:
            log.error("new sales stopped", extra={"reason": alarm})
        else:
            log.info("store has room again; sales allowed")
        self.alarm = alarm
        self.sales_allowed = not alarm
        for listener in self._listeners:
            try:
                listener(alarm)
            except Exception:
                log.exception("store alarm listener failed")

    def disk_free_bytes(self) -> int:
        """Measured now, not at the last round."""
        return self._free_bytes(self._store.path.parent)

    async def status(self) -> dict[str, Any]:
        stats = await self._outbox.stats()
        return {
            "size_bytes": self._store.size_bytes(),
            "used_bytes": await self._store.used_bytes(),
            "disk_free_bytes": self.disk_free_bytes(),
            "sales_allowed": self.sales_allowed,
            "alarm": self.alarm,
            "outbox_depth": stats.depth,
            "outbox_oldest_age_s": round(stats.oldest_age_s(self._store.clock.now()), 1),
            "outbox_delivered": stats.delivered,
        }
