"""Keeps the store bounded: prunes delivered outbox rows, watches size, raises the alarm.

A store past its limit must stop new sales before it corrupts old ones; telemetry is shed
first. `sales_allowed` is what the checkout consults before it opens a sale.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import timedelta
from typing import Any

from edged.config.models import StoreLimits
from edged.store.database import Store
from edged.store.outbox import Outbox

log = logging.getLogger("edged.store")

CHECK_INTERVAL_S = 30.0
MIN_FREE_DISK_BYTES = 32 * 1024 * 1024


class StoreMaintenance:
    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        limits: StoreLimits,
        retention_hours: float,
        interval_s: float = CHECK_INTERVAL_S,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._limits = limits
        self._retention = timedelta(hours=retention_hours)
        self._interval_s = interval_s
        self.sales_allowed = True
        self.alarm = ""

    async def run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self._interval_s)

    async def check(self) -> None:
        """One round: prune, measure, and set or clear the alarm. Raises if SQLite fails."""
        await self._outbox.prune_delivered(self._store.clock.now() - self._retention)
        limit = self._limits.max_db_mb * 1024 * 1024
        used_pct = 100 * await self._store.used_bytes() / limit
        free = shutil.disk_usage(self._store.path.parent).free
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
        if alarm != self.alarm:
            if alarm:
                log.error("new sales stopped", extra={"reason": alarm})
            else:
                log.info("store has room again; sales allowed")
        self.alarm = alarm
        self.sales_allowed = not alarm

    async def status(self) -> dict[str, Any]:
        stats = await self._outbox.stats()
        return {
            "size_bytes": self._store.size_bytes(),
            "used_bytes": await self._store.used_bytes(),
            "sales_allowed": self.sales_allowed,
            "alarm": self.alarm,
            "outbox_depth": stats.depth,
            "outbox_oldest_age_s": round(stats.oldest_age_s(self._store.clock.now()), 1),
            "outbox_delivered": stats.delivered,
        }
