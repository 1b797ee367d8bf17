"""Refunds: after the sale, money goes back once, by a persisted state machine.

`setup(ctx, printing=...)` registers `refund.result` on cmd/pay and `op.refund` on cmd/op
(each in that topic's dispatch table), the technician's control commands, the engine task
(core: a refund engine that died would leave a shopper's money in limbo) and the status.
"""

from __future__ import annotations

from edged.contract.topics import Downlink
from edged.runtime.supervisor import Role
from edged.services.part import PartContext
from edged.services.printing.queue import PrintQueue
from edged.services.refunds.commands import OP_REFUND, RefundOp, TechnicianRefunds
from edged.services.refunds.service import RESULT_TYPE, RefundsService


async def setup(ctx: PartContext, *, printing: PrintQueue) -> RefundsService:
    config = ctx.config
    refunds = RefundsService(
        ctx.store, ctx.outbox, config.refunds, printing, config.checkout.shop_name
    )
    ctx.downlink.register_type(Downlink.PAY, RESULT_TYPE, refunds.handle_result)
    ctx.downlink.register_type(Downlink.OP, OP_REFUND, RefundOp(refunds, ctx.outbox).handle)
    technician = TechnicianRefunds(refunds, config.security.technician_token)
    ctx.control.register("refund.start", technician.start)
    ctx.control.register("refund.list", technician.list)
    ctx.supervisor.start("refunds", refunds.run, Role.CORE)
    ctx.add_status("refunds", refunds.status)
    return refunds
