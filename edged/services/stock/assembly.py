"""The stock part: signed `cmd/stock` updates applied to the catalog, and their status."""

from __future__ import annotations

from edged.contract.topics import Downlink
from edged.services.part import PartContext
from edged.services.stock.updates import StockUpdates


async def setup(ctx: PartContext) -> StockUpdates:
    updates = StockUpdates(ctx.outbox)
    ctx.downlink.register(Downlink.STOCK, updates.handle_downlink)
    ctx.add_status("stock_updates", updates.status)
    return updates
