"""The daily settlement (日结) and reconciliation: the sales ledger seen as days.

`setup(ctx, printing=...)` loads the device's identity key (made at provisioning), registers
`cmd/recon`, the `report.day` / `report.sales` control commands, the cut-over task and the
status section.
"""

from __future__ import annotations

from edged.contract.topics import Downlink
from edged.runtime.supervisor import Role
from edged.services.part import PartContext
from edged.services.printing.queue import PrintQueue
from edged.services.settlement.commands import ReportCommands
from edged.services.settlement.identity import load_identity, load_or_create_identity
from edged.services.settlement.service import SettlementService


async def setup(ctx: PartContext, *, printing: PrintQueue) -> SettlementService:
    config = ctx.config
    configured = config.settlement.identity_key
    identity = (
        load_identity(configured)
        if configured is not None
        else load_or_create_identity(config.paths.data_dir / "identity.key")
    )
    settlement = SettlementService(
        ctx.store, ctx.outbox, config.settlement, identity, printing, config.checkout.shop_name
    )
    ctx.downlink.register(Downlink.RECON, settlement.handle_recon)
    commands = ReportCommands(settlement, ctx.store)
    ctx.control.register("report.day", commands.day)
    ctx.control.register("report.sales", commands.sales)
    # The cut-over task restarts with backoff: a failed settlement run must not stop sales.
    ctx.supervisor.start("settlement", settlement.run, Role.DEVICE)
    ctx.add_status("settlement", settlement.status)
    return settlement
