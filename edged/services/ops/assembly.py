"""The ops part: `cmd/op` with its one dispatch table, and the commands the daemon carries out.

Each built-in command is registered only when the part it needs exists; other parts add
theirs to the returned table (`ops.table.register("op.x", handler)`) while they are set up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from edged.contract.bodies import StockLevel
from edged.contract.topics import Downlink
from edged.runtime.logs import RecentLogLines
from edged.services.ops import commands
from edged.services.ops.requests import OpRequests
from edged.services.ops.service import OpsService
from edged.services.ops.table import OpTable
from edged.services.part import PartContext
from edged.services.printing.queue import PrintQueue
from edged.store.database import Statements
from hal.printer.protocol import Printer


async def setup(
    ctx: PartContext,
    *,
    printing: PrintQueue,
    printer: Printer,
    status: Callable[[], Awaitable[dict[str, Any]]],
    logs: RecentLogLines,
    stock_levels: Callable[[Statements], list[StockLevel]],
    busy: Callable[[], bool],
    payment_open: Callable[[], bool],
    request_restart: Callable[[], None],
) -> OpsService:
    table = OpTable()
    levels = commands.LogLevels(ctx.clock)
    table.register("op.reprint", commands.reprint(printing))
    table.register("op.drawer.open", commands.drawer_open(printer), interlocked=True)
    table.register("op.diagnostics", commands.diagnostics(status, logs))
    table.register("op.stock.resync", commands.stock_resync(ctx.store, ctx.outbox, stock_levels))
    table.register("op.log.level", levels.handler())
    table.register("op.restart", commands.restart(ctx.clock, busy, payment_open, request_restart))
    ops = OpsService(ctx.store, OpRequests(ctx.outbox), table, payment_open)
    await ops.recover()
    ctx.downlink.register(Downlink.OP, ops.handle_downlink, on_refused=ops.handle_refused)
    ctx.add_status("ops", ops.status)
    ctx.on_close(ops.close)
    ctx.on_close(levels.close)
    return ops
