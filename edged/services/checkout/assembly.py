"""Builds checkout and its print queue for the composition root, in two steps.

`build_checkout` constructs, seeds the catalog, resumes the open sale and registers the
control commands; `CheckoutParts.start` starts the supervised tasks. Between the two the
daemon hands checkout its payments (`parts.checkout.use_payments(...)`), so the checkout task
recovers payments with the real service, never with none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edged.config.models import DaemonConfig
from edged.contract.topics import Downlink
from edged.control.server import ControlServer
from edged.link.downlink import DownlinkRegistry
from edged.runtime.supervisor import Role, Supervisor
from edged.services.checkout.catalog import Catalog
from edged.services.checkout.control import register_commands
from edged.services.checkout.service import Checkout, CheckoutSettings
from edged.services.checkout.stock_updates import StockUpdates
from edged.services.printing.queue import PrintQueue
from edged.store import Store
from edged.store.outbox import Outbox
from hal.factory import Devices


@dataclass(frozen=True)
class CheckoutParts:
    checkout: Checkout
    print_queue: PrintQueue
    catalog: Catalog
    stock_updates: StockUpdates

    def start(self, supervisor: Supervisor) -> None:
        # Both restart with backoff: a printer fault or a failed payments recovery (link
        # down) must not stop the daemon; the checkout task re-runs recovery when restarted.
        supervisor.start("print-queue", self.print_queue.run, Role.DEVICE)
        supervisor.start("checkout", self.checkout.run, Role.DEVICE)


async def build_checkout(
    config: DaemonConfig,
    store: Store,
    outbox: Outbox,
    devices: Devices,
    control: ControlServer,
    downlink: DownlinkRegistry,
    sales_allowed: Callable[[], bool],
) -> CheckoutParts:
    catalog = Catalog(store)
    await catalog.seed_if_empty(config.checkout.catalog_seed)
    print_queue = PrintQueue(store, devices.printer)
    checkout = Checkout(
        store,
        outbox,
        devices.display,
        print_queue,
        CheckoutSettings(
            shop_name=config.checkout.shop_name,
            order_url=config.checkout.order_url,
            inactivity_timeout_s=config.checkout.inactivity_timeout_s,
            max_sale_fen=config.payments.max_sale_fen,
        ),
        sales_allowed=sales_allowed,
    )
    await checkout.resume()
    register_commands(control, checkout, print_queue, devices.scanner, devices.camera)
    stock_updates = StockUpdates(outbox)
    downlink.register(Downlink.STOCK, stock_updates.handle_downlink)
    return CheckoutParts(checkout, print_queue, catalog, stock_updates)
