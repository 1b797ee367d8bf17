"""Builds the link's parts for the daemon: broker (embedded in development), router, link.

Kept out of the composition root so that `Daemon._start` stays one line per subsystem;
the daemon is seen here only through the small `LinkHost` protocol.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, Protocol

from edged import __version__
from edged.config import DaemonConfig
from edged.contract.signing import load_public_keys
from edged.contract.topics import DeviceTopics
from edged.link.birth import BirthInfo
from edged.link.downlink import DownlinkRouter, DownlinkVerifier
from edged.link.embedded_broker import EmbeddedBroker
from edged.link.health import HealthReporter
from edged.link.service import Link
from edged.link.settings import client_settings, endpoints
from edged.runtime.clock import Clock
from edged.runtime.supervisor import Role, Supervisor
from edged.store.database import Store
from edged.store.inbox import Inbox
from edged.store.maintenance import StoreMaintenance
from edged.store.outbox import Outbox
from hal.device import DeviceStatus
from hal.factory import Devices

StatusProvider = Callable[[], Awaitable[dict[str, Any]]]
Closer = Callable[[], Awaitable[None]]


class LinkHost(Protocol):
    config: DaemonConfig
    clock: Clock
    topics: DeviceTopics
    store: Store
    outbox: Outbox
    inbox: Inbox
    supervisor: Supervisor
    boot_id: str

    def add_status(self, section: str, provider: StatusProvider) -> None: ...

    def on_close(self, closer: Closer) -> None: ...


async def start_link(host: LinkHost) -> tuple[DownlinkRouter, Link]:
    """Start the broker when embedded, then the link as a core task; returns its router."""
    cfg = host.config
    embedded: tuple[str, int] | None = None
    if cfg.broker.mode == "embedded":
        broker = EmbeddedBroker(cfg.broker.host, cfg.broker.port)
        embedded = await broker.start()
        host.on_close(broker.stop)
    addresses = endpoints(cfg.broker, embedded)
    verifier = DownlinkVerifier(
        host.topics,
        load_public_keys(cfg.security.trusted_keys),
        host.clock,
        max_bytes=cfg.link.max_downlink_bytes,
        max_clock_skew_s=cfg.security.max_clock_skew_s,
    )
    router = DownlinkRouter(host.topics, host.store, host.inbox, verifier)
    link = Link(
        client_settings(cfg.broker, cfg.link, cfg.device, addresses[0].host, addresses[0].port),
        topics=host.topics,
        store=host.store,
        outbox=host.outbox,
        router=router,
        birth=lambda: BirthInfo(host.boot_id, __version__, capabilities(host)),
        reconnect_min_s=cfg.link.reconnect_min_s,
        reconnect_max_s=cfg.link.reconnect_max_s,
        endpoints=addresses,
        stable_after_s=cfg.link.reconnect_stable_s,
    )
    host.supervisor.start("link", link.run, Role.CORE)
    host.add_status("link", link.status)

    maintenance: StoreMaintenance | None = getattr(host, "maintenance", None)

    async def health_body() -> dict[str, Any]:
        body = {
            "link": await link.status(),
            "tasks": [asdict(t) for t in host.supervisor.health()],
            "devices": device_statuses(host),
            "db_bytes": host.store.size_bytes(),
        }
        if maintenance is not None:
            body["sales_allowed"] = maintenance.sales_allowed
            body["store_alarm"] = maintenance.alarm
            body["disk_free_bytes"] = maintenance.disk_free_bytes()
        return body

    health = HealthReporter(
        host.store, host.outbox, cfg.health.interval_s, health_body, link.publish_direct
    )
    if maintenance is not None:
        maintenance.on_change(lambda _alarm: health.wake())  # says why at once
    host.supervisor.start("health", health.run, Role.DEVICE)
    return router, link


def _statuses(host: LinkHost) -> list[DeviceStatus]:
    devices: Devices | None = getattr(host, "devices", None)  # built after the link starts
    return devices.statuses() if devices is not None else []


def capabilities(host: LinkHost) -> list[str]:
    return sorted({str(status.kind) for status in _statuses(host)})


def device_statuses(host: LinkHost) -> list[dict[str, Any]]:
    return [asdict(status) for status in _statuses(host)]
