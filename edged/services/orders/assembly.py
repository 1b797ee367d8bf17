"""The orders part for the composition root: it registers what it handles (`cmd/order`,
pickup QR scans, the staff and kiosk-screen commands) and its expiry task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edged.contract.signing import load_public_keys
from edged.contract.topics import Downlink
from edged.control.server import CommandError, ControlServer
from edged.runtime.supervisor import Role
from edged.services.orders.service import OrdersService
from edged.services.part import PartContext
from edged.services.printing.queue import PrintQueue
from hal.display.protocol import Display

if TYPE_CHECKING:
    from edged.services.release.service import ReleaseService


async def setup(
    ctx: PartContext,
    *,
    display: Display,
    printing: PrintQueue | None,
    releases: ReleaseService | None,
) -> OrdersService:
    service = OrdersService(
        ctx.store,
        ctx.outbox,
        ctx.topics,
        load_public_keys(ctx.config.security.trusted_keys),
        display,
        print_queue=printing if ctx.config.orders.print_tickets else None,
        releases=releases,
        slots=0 if releases is None else releases.slots,
    )
    ctx.downlink.register(Downlink.ORDER, service.handle_downlink)
    ctx.on_scan(service.handle_scan)
    ctx.supervisor.start("orders", service.run, Role.DEVICE)
    ctx.add_status("orders", service.status)
    register_commands(ctx.control, service)
    return service


def register_commands(control: ControlServer, service: OrdersService) -> None:
    async def by_code(args: dict[str, Any]) -> dict[str, Any]:
        code = args.get("code")
        if not isinstance(code, str):
            raise CommandError("code must be the 6-digit pickup code as text")
        return (await service.pickup_by_code(code)).as_dict()

    async def ready(args: dict[str, Any]) -> dict[str, Any]:
        order_id = args.get("order_id")
        if not isinstance(order_id, str) or not order_id:
            raise CommandError("order_id must be an order id")
        if not await service.mark_ready(order_id):
            raise CommandError(f"order {order_id} is not waiting to be prepared")
        return {"order_id": order_id, "status": "ready"}

    control.register("order.code", by_code)
    control.register("order.ready", ready)
