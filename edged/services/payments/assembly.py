"""Builds the payments service for the composition root and plugs it into its neighbours.

Payments needs checkout (its SettlementSink) and checkout needs payments, so the daemon
builds checkout first and then calls `build_payments`, which binds both ways, registers the
`cmd/pay` handler with the link's downlink router, and starts the engine as a core task: a
payment engine that died would leave a shopper's money in limbo, so systemd restarts all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from edged.config.models import DaemonConfig
from edged.contract.topics import Downlink
from edged.link.downlink import DownlinkRegistry
from edged.runtime.supervisor import Role, Supervisor
from edged.services.payments.protocol import Payments, SettlementSink
from edged.services.payments.sealing import load_seal_public_key
from edged.services.payments.service import PaymentsService
from edged.store import Store
from edged.store.outbox import Outbox


class CheckoutSide(SettlementSink, Protocol):
    def use_payments(self, payments: Payments) -> None: ...


async def build_payments(
    config: DaemonConfig,
    store: Store,
    outbox: Outbox,
    checkout: CheckoutSide,
    downlink: DownlinkRegistry,
    supervisor: Supervisor,
    add_status: Callable[[str, Callable[[], Awaitable[dict[str, Any]]]], None],
    sink: SettlementSink | None = None,
) -> PaymentsService:
    """`sink` wraps checkout when more must commit with a paid sale (a vending release)."""
    seal = config.security.backend_seal_key
    payments = PaymentsService(
        store,
        outbox,
        config.payments,
        load_seal_public_key(seal) if seal else None,
        sink=sink or checkout,
    )
    await payments.start()
    checkout.use_payments(payments)
    downlink.register(Downlink.PAY, payments.handle_downlink)
    supervisor.start("payments", payments.run, Role.CORE)
    add_status("payments", payments.status)
    return payments
