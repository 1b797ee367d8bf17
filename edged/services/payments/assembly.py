"""The payments part: the engine, its `cmd/pay` handler and its status.

Payments settles with the sales ledger. The engine is a core task: a payment engine that died
would leave a shopper's money in limbo, so systemd restarts the whole daemon.
"""

from __future__ import annotations

from typing import Any

from edged.contract.topics import Downlink
from edged.runtime.supervisor import Role
from edged.services.part import PartContext
from edged.services.payments.protocol import SettlementSink
from edged.services.payments.sealing import load_seal_public_key
from edged.services.payments.service import PaymentsService


async def setup(ctx: PartContext, *, sales: SettlementSink) -> PaymentsService:
    seal = ctx.config.security.backend_seal_key
    payments = PaymentsService(
        ctx.store,
        ctx.outbox,
        ctx.config.payments,
        load_seal_public_key(seal) if seal else None,
        sink=sales,
    )
    await payments.start()
    ctx.downlink.register(Downlink.PAY, payments.handle_downlink)
    ctx.supervisor.start("payments", payments.run, Role.CORE)
    ctx.add_status("payments", payments.status)

    async def in_doubt(_args: dict[str, Any]) -> dict[str, Any]:
        """`edged payments in-doubt`: parked trades and late successes to refund."""
        return dict(await payments.in_doubt())

    ctx.control.register("payments.in_doubt", in_doubt)
    ctx.on_reconfigure("payments", lambda new: payments.reconfigure(new.payments))
    return payments
