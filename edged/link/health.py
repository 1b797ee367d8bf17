"""Periodic `evt/health` telemetry, written through the outbox at telemetry priority.

Going through the outbox (not a direct publish) keeps one path to the broker; only the
newest undelivered report is kept, so an offline week does not queue 20,000 stale reports,
and the store sheds these first when it runs out of room.

The one exception: when the disk is too full for the outbox to take the report, it goes
straight to the broker at QoS 0 (`direct`), if connected, so operations hear why the kiosk
stopped selling. `wake()` sends a report now (the store alarm changed), not at the next
interval.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from edged.contract.topics import Uplink
from edged.store.database import Store, StoreUnwritable
from edged.store.outbox import Outbox

HEALTH_TYPE = "health.report"
THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")

Collect = Callable[[], Awaitable[dict[str, Any]]]
Direct = Callable[[Uplink, str, dict[str, Any]], bool]
"""(kind, type, body) -> published: a QoS 0 publish that bypasses the store."""


def cpu_temperature_c(zone: Path = THERMAL_ZONE) -> float | None:
    with suppress(OSError, ValueError):
        return round(int(zone.read_text().strip()) / 1000, 1)
    return None


class HealthReporter:
    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        interval_s: float,
        collect: Collect,
        direct: Direct | None = None,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._interval_s = interval_s
        self._collect = collect
        self._direct = direct
        self._wake = asyncio.Event()
        self.direct_reports = 0

    def wake(self) -> None:
        """Report now, not at the next interval."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            with suppress(TimeoutError):
                async with asyncio.timeout(self._interval_s):
                    await self._wake.wait()
            self._wake.clear()
            await self.report()

    async def report(self) -> None:
        body = await self._collect()
        body["temperature_c"] = cpu_temperature_c()
        try:
            async with self._store.transaction() as tx:
                await self._outbox.supersede_pending(tx, Uplink.HEALTH)
                await self._outbox.add(tx, Uplink.HEALTH, HEALTH_TYPE, body)
        except StoreUnwritable:
            if self._direct is not None and self._direct(Uplink.HEALTH, HEALTH_TYPE, body):
                self.direct_reports += 1
