"""The sales part: the ledger that payments settles with and checkout follows."""

from __future__ import annotations

from edged.services.part import PartContext
from edged.services.printing.queue import PrintQueue
from edged.services.sales.ledger import SalesLedger


async def setup(ctx: PartContext, *, printing: PrintQueue) -> SalesLedger:
    return SalesLedger(ctx.store, ctx.outbox, printing)
