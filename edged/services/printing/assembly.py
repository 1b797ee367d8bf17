"""The printing part: the durable print queue on the configured printer, one device task."""

from __future__ import annotations

from edged.runtime.supervisor import Role
from edged.services.part import PartContext
from edged.services.printing.queue import PrintQueue
from hal.printer.protocol import Printer


async def setup(ctx: PartContext, *, printer: Printer) -> PrintQueue:
    queue = PrintQueue(ctx.store, printer)
    # A printer fault restarts the worker with backoff; it never stops the daemon.
    ctx.supervisor.start("print-queue", queue.run, Role.DEVICE)
    return queue
