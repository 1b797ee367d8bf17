"""Periodic `evt/health` telemetry, written through the outbox at telemetry priority.

Going through the outbox (not a direct publish) keeps one path to the broker; only the
newest undelivered report is kept, so an offline week does not queue 20,000 stale reports,
and the store sheds these first when it runs out of room. The body is a `HealthBody`, the
model the AsyncAPI file documents.
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
from edged.store.database import Store
from edged.store.outbox import Outbox
from hal.device import DeviceStatus

HEALTH_TYPE = "health.report"
THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")

Collect = Callable[[], Awaitable[HealthBody]]


def cpu_temperature_c(zone: Path = THERMAL_ZONE) -> float | None:
    with suppress(OSError, ValueError):
        return round(int(zone.read_text().strip()) / 1000, 1)
    return None


def disk_free_bytes(path: Path) -> int:
    with suppress(OSError):
        return int(shutil.disk_usage(path).free)
    return 0


def health_body(
    *,
    link_status: dict[str, Any],
    store: Store,
    sales_allowed: bool,
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
        disk_free_bytes=disk_free_bytes(store.path.parent),
        db_bytes=store.size_bytes(),
        temperature_c=cpu_temperature_c(),
        sales_allowed=sales_allowed,
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
        body = dump_body(await self._collect())
        async with self._store.transaction() as tx:
            await self._outbox.supersede_pending(tx, Uplink.HEALTH, HEALTH_TYPE)
            await self._outbox.add(tx, Uplink.HEALTH, HEALTH_TYPE, body)
