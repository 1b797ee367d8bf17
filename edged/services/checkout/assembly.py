"""The checkout part: the sale session on the display, fed by every scan.

It seeds an empty catalog, resumes the open sale where the shopper left it, registers the
control commands and its status, and runs one device task: recover payments left open by a
crash, then watch the basket for inactivity. A failed recovery (link down) restarts the task
with backoff; it must not stop the daemon.
"""

from __future__ import annotations

from collections.abc import Callable

from edged.config import DaemonConfig
from edged.runtime.supervisor import Role
from edged.services.checkout.control import register_commands
from edged.services.checkout.service import Checkout, CheckoutSettings
from edged.services.part import PartContext
from edged.services.payments.protocol import Payments
from edged.services.printing.queue import PrintQueue
from edged.services.sales.ledger import SalesLedger
from edged.services.stock.catalog import Catalog
from hal.factory import Devices


async def setup(
    ctx: PartContext,
    *,
    devices: Devices,
    sales: SalesLedger,
    payments: Payments,
    printing: PrintQueue,
    sales_allowed: Callable[[], bool],
) -> Checkout:
    config = ctx.config
    await Catalog(ctx.store).seed_if_empty(config.checkout.catalog_seed)
    checkout = Checkout(
        ctx.store,
        devices.display,
        printing,
        _settings(config),
        sales_allowed=sales_allowed,
        payments=payments,
        sales=sales,
    )
    await checkout.resume()
    register_commands(ctx.control, checkout, printing, devices.scanner, devices.camera)
    ctx.on_scan(checkout.handle_scan)

    def reconfigure(new: DaemonConfig) -> None:
        checkout.reconfigure(_settings(new))

    ctx.on_reconfigure("checkout", reconfigure)
    ctx.on_reconfigure("payments", reconfigure)  # max_sale_fen
    ctx.add_status("checkout", checkout.status)
    ctx.on_close(checkout.close)
    ctx.supervisor.start("checkout", checkout.run, Role.DEVICE)
    return checkout


def _settings(config: DaemonConfig) -> CheckoutSettings:
    return CheckoutSettings(
        shop_name=config.checkout.shop_name,
        order_url=config.checkout.order_url,
        inactivity_timeout_s=config.checkout.inactivity_timeout_s,
        max_sale_fen=config.payments.max_sale_fen,
    )
