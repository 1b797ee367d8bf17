"""Builds the link's parts for the composition root: broker (embedded in development), router,
link and the health reporter, each registered (task, status, close) here.

Everything it needs is an explicit argument; the devices are seen only through their
statuses, which the composition root builds before the link.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from edged import __version__
from edged.config import DaemonConfig
from edged.contract.bodies import HealthBody
from edged.contract.signing import load_public_keys
from edged.contract.topics import DeviceTopics
from edged.link.birth import BirthInfo
from edged.link.downlink import DownlinkRouter, DownlinkVerifier
from edged.link.embedded_broker import EmbeddedBroker
from edged.link.health import HealthReporter, health_body
from edged.link.service import Link
from edged.link.settings import client_settings, endpoints
from edged.runtime.clock import Clock
from edged.runtime.supervisor import Role, Supervisor
from edged.store.database import Store
from edged.store.inbox import Inbox
from edged.store.maintenance import StoreMaintenance
from edged.store.outbox import Outbox
from hal.device import DeviceStatus

StatusProvider = Callable[[], Awaitable[dict[str, Any]]]
Closer = Callable[[], Awaitable[None]]
DeviceStatuses = Callable[[], list[DeviceStatus]]


async def start_link(
    cfg: DaemonConfig,
    *,
    clock: Clock,
    topics: DeviceTopics,
    store: Store,
    outbox: Outbox,
    inbox: Inbox,
    supervisor: Supervisor,
    boot_id: str,
    device_statuses: DeviceStatuses,
    on_close: Callable[[Closer], None],
    add_status: Callable[[str, StatusProvider], None],
    maintenance: StoreMaintenance | None = None,
) -> tuple[DownlinkRouter, Link]:
    """Start the broker when embedded, then the link as a core task; returns its router.

    `maintenance` gives each health report the store's verdict (sales allowed, alarm)."""
    embedded: tuple[str, int] | None = None
    speaks_mqtt5 = True
    if cfg.broker.mode == "embedded":
        broker = EmbeddedBroker(cfg.broker.host, cfg.broker.port, cfg.broker.embedded_server)
        embedded = await broker.start()
        on_close(broker.stop)
        speaks_mqtt5 = broker.mqtt5
    addresses = endpoints(cfg.broker, embedded)
    verifier = DownlinkVerifier(
        topics,
        load_public_keys(cfg.security.trusted_keys),
        clock,
        max_bytes=cfg.link.max_downlink_bytes,
        max_clock_skew_s=cfg.security.max_clock_skew_s,
    )
    router = DownlinkRouter(topics, store, inbox, verifier)
    link = Link(
        client_settings(
            cfg.broker,
            cfg.link,
            cfg.device,
            addresses[0].host,
            addresses[0].port,
            broker_speaks_mqtt5=speaks_mqtt5,
        ),
        topics=topics,
        store=store,
        outbox=outbox,
        router=router,
        birth=lambda: BirthInfo(boot_id, __version__, capabilities(device_statuses())),
        reconnect_min_s=cfg.link.reconnect_min_s,
        reconnect_max_s=cfg.link.reconnect_max_s,
        endpoints=addresses,
        stable_after_s=cfg.link.reconnect_stable_s,
    )
    supervisor.start("link", link.run, Role.CORE)
    add_status("link", link.status)

    async def collect() -> HealthBody:
        return health_body(
            link_status=await link.status(),
            store=store,
            maintenance=maintenance,
            devices=device_statuses(),
            tasks=supervisor.health(),
        )

    health = HealthReporter(
        store, outbox, cfg.health.interval_s, collect, direct=link.publish_direct
    )
    if maintenance is not None:
        maintenance.on_change(lambda _alarm: health.wake())  # says why at once
    supervisor.start("health", health.run, Role.DEVICE)
    return router, link


def capabilities(statuses: list[DeviceStatus]) -> list[str]:
    return sorted({str(status.kind) for status in statuses})
