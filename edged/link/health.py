"""Periodic `evt/health` telemetry, written through the outbox at telemetry priority.

Going through the outbox (not a direct publish) keeps one path to the broker; only the
newest undelivered report is kept, so an offline week does not queue 20,000 stale reports,
and the store sheds these first when it runs out of room.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from edged.contract.topics import Uplink
from edged.store.database import Store
from edged.store.outbox import Outbox

HEALTH_TYPE = "health.report"
THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")

Collect = Callable[[], Awaitable[dict[str, Any]]]


def cpu_temperature_c(zone: Path = THERMAL_ZONE) -> float | None:
    with suppress(OSError, ValueError):
        return round(int(zone.read_text().strip()) / 1000, 1)
    return None


class HealthReporter:
    def __init__(self, store: Store, outbox: Outbox, interval_s: float, collect: Collect) -> None:
        self._store = store
        self._outbox = outbox
        self._interval_s = interval_s
        self._collect = collect

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.report()

    async def report(self) -> None:
        body = await self._collect()
        body["temperature_c"] = cpu_temperature_c()
        async with self._store.transaction() as tx:
            await self._outbox.supersede_pending(tx, Uplink.HEALTH)
            await self._outbox.add(tx, Uplink.HEALTH, HEALTH_TYPE, body)
