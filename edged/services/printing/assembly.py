"""The printing part: the durable print queue on the configured printer, one device task."""

from __future__ import annotations

from typing import Any

from edged.control.server import CommandError
from edged.runtime.supervisor import Role
from edged.services.part import PartContext
from edged.services.printing.queue import PrintQueue
from hal.printer.protocol import PaperState, Printer
from hal.printer.sim import SimulatedPrinter


async def setup(ctx: PartContext, *, printer: Printer) -> PrintQueue:
    queue = PrintQueue(ctx.store, printer)
    # A printer fault restarts the worker with backoff; it never stops the daemon.
    ctx.supervisor.start("print-queue", queue.run, Role.DEVICE)
    if isinstance(printer, SimulatedPrinter):
        sim = printer

        async def sim_paper(args: dict[str, Any]) -> dict[str, Any]:
            """`edged sim paper out|in`: the simulated printer runs out of paper, or not."""
            state = args.get("state")
            if state not in ("out", "in"):
                raise CommandError('state must be "out" or "in"')
            sim.state = PaperState(paper_out=state == "out")
            return {"paper_out": sim.state.paper_out}

        ctx.control.register("sim.paper", sim_paper)
    return queue
