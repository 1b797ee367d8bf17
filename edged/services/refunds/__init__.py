"""Refunds: after the sale, money goes back once, by a persisted state machine.

`setup(ctx, print_queue=...)` registers `refund.result` on cmd/pay and `op.refund` on cmd/op
(each in that topic's dispatch table), the technician's control commands, the engine task
(core: a refund engine that died would leave a shopper's money in limbo) and the status.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from edged.config.models import DaemonConfig
from edged.contract.topics import Downlink
from edged.control.server import ControlServer
from edged.link.downlink import DownlinkRegistry
from edged.runtime.supervisor import Role, Supervisor
from edged.services.printing.queue import PrintQueue
from edged.services.refunds.commands import OP_REFUND, RefundOp, TechnicianRefunds
from edged.services.refunds.service import RESULT_TYPE, RefundsService
from edged.store import Store
from edged.store.outbox import Outbox

StatusProvider = Callable[[], Awaitable[dict[str, Any]]]


class RefundsContext(Protocol):
    """What refunds takes from the composition root's part context."""

    @property
    def config(self) -> DaemonConfig: ...
    @property
    def store(self) -> Store: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def downlink(self) -> DownlinkRegistry: ...
    @property
    def control(self) -> ControlServer: ...
    @property
    def supervisor(self) -> Supervisor: ...

    def add_status(
        self, section: str, provider: Callable[[], Awaitable[dict[str, Any]]]
    ) -> None: ...


async def setup(ctx: RefundsContext, *, print_queue: PrintQueue) -> RefundsService:
    config = ctx.config
    refunds = RefundsService(
        ctx.store, ctx.outbox, config.refunds, print_queue, config.checkout.shop_name
    )
    ctx.downlink.register_type(Downlink.PAY, RESULT_TYPE, refunds.handle_result)
    ctx.downlink.register_type(Downlink.OP, OP_REFUND, RefundOp(refunds, ctx.outbox).handle)
    technician = TechnicianRefunds(refunds, config.security.technician_token)
    ctx.control.register("refund.start", technician.start)
    ctx.control.register("refund.list", technician.list)
    ctx.supervisor.start("refunds", refunds.run, Role.CORE)
    ctx.add_status("refunds", refunds.status)
    return refunds
