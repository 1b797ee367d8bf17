"""Periodic `evt/health` telemetry, written through the outbox at telemetry priority.

Going through the outbox (not a direct publish) keeps one path to the broker; only the
newest undelivered report is kept, so an offline week does not queue 20,000 stale reports,
and the store sheds these first when it runs out of room. The body is a `HealthBody`, the
model the AsyncAPI file documents.

The one exception: when the disk is too full for the outbox to take the report, it goes
straight to the broker at QoS 0 (`direct`), if connected, so operations hear why the kiosk
stopped selling. `wake()` sends a report now (the store alarm changed), not at the next
interval.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any

from edged.contract.bodies import HealthBody, HealthBroker, HealthDevice, HealthTask, dump_body
from edged.contract.topics import Uplink
from edged.runtime.supervisor import TaskHealth
from edged.store.database import Store, StoreUnwritable
from edged.store.maintenance import StoreMaintenance
from edged.store.outbox import Outbox
from hal.device import DeviceStatus

HEALTH_TYPE = "health.report"
THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")

Collect = Callable[[], Awaitable[HealthBody]]
Direct = Callable[[Uplink, str, dict[str, Any]], bool]
"""(kind, type, body) -> published: a QoS 0 publish that bypasses the store."""


def cpu_temperature_c(zone: Path = THERMAL_ZONE) -> float | None:
    with suppress(OSError, ValueError):
        return round(int(zone.read_text().strip()) / 1000, 1)
    return None


def _disk_free_bytes(store: Store, maintenance: StoreMaintenance | None) -> int:
    with suppress(OSError):
        if maintenance is not None:
            return int(maintenance.disk_free_bytes())
        return int(shutil.disk_usage(store.path.parent).free)
    return 0


def health_body(
    *,
    link_status: dict[str, Any],
    store: Store,
    maintenance: StoreMaintenance | None,
    devices: Iterable[DeviceStatus],
    tasks: Iterable[TaskHealth],
) -> HealthBody:
    """One report from what the link, the store and the supervisor say right now."""
    return HealthBody(
        devices=[
            HealthDevice(
                kind=str(d.kind),
                driver=d.driver,
                present=d.present,
                ok=d.ok,
                detail=d.detail[:200],
            )
            for d in devices
        ],
        queue_depth=int(link_status["queue_depth"]),
        oldest_unsent_age_s=float(link_status["oldest_undelivered_age_s"]),
        disk_free_bytes=_disk_free_bytes(store, maintenance),
        db_bytes=store.size_bytes(),
        temperature_c=cpu_temperature_c(),
        sales_allowed=maintenance.sales_allowed if maintenance is not None else True,
        store_alarm=maintenance.alarm[:200] if maintenance is not None else "",
        broker=HealthBroker(
            connected=bool(link_status["connected"]),
            address=str(link_status["broker"]),
            protocol=link_status["protocol"],
            tls=bool(link_status["tls"]),
            connects=int(link_status["connects"]),
            last_error=str(link_status["last_error"])[:500],
        ),
        tasks=[
            HealthTask(
                name=t.name,
                role=t.role.value,
                running=t.running,
                restarts=t.restarts,
                last_error=t.last_error[:500],
            )
            for t in tasks
        ],
    )


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
        body = dump_body(await self._collect())
        try:
            async with self._store.transaction() as tx:
                await self._outbox.supersede_pending(tx, Uplink.HEALTH, HEALTH_TYPE)
                await self._outbox.add(tx, Uplink.HEALTH, HEALTH_TYPE, body)
        except StoreUnwritable:
            if self._direct is not None and self._direct(Uplink.HEALTH, HEALTH_TYPE, body):
                self.direct_reports += 1
