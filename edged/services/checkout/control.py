"""Control-socket commands for the shopper's side of the kiosk and its simulated devices.

`sim.scan` / `sim.camera` feed the simulated scanner or camera, so a scan travels the same
path as a real one (reader task -> scan dispatch -> checkout), and answer once checkout has
handled it. A payment code passes through but never appears in a reply or a log.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from edged.contract.pickup import MAX_TOKEN_CHARS, is_pickup_token
from edged.control.server import CommandError, ControlServer
from edged.services.checkout.codes import MAX_SCAN_CHARS
from edged.services.checkout.service import Checkout, CheckoutError
from edged.services.printing.queue import PrintQueue, ReprintError
from edged.store import StoreUnwritable
from hal.scanner.protocol import CodeReader
from hal.scanner.sim import SimulatedReader

SCAN_ANSWER_WITHIN_S = 5.0
T = TypeVar("T")


def register_commands(
    control: ControlServer,
    checkout: Checkout,
    print_queue: PrintQueue,
    scanner: CodeReader,
    camera: CodeReader | None,
) -> None:
    async def sim_scan(args: dict[str, Any]) -> dict[str, Any]:
        return await _feed(checkout, scanner, "scanner", args)

    async def sim_camera(args: dict[str, Any]) -> dict[str, Any]:
        if camera is None:
            raise CommandError('no camera is configured ([camera] driver = "none")')
        return await _feed(checkout, camera, "camera", args)

    async def cart_void(args: dict[str, Any]) -> dict[str, Any]:
        await _checked(checkout.void_line(_int(args, "line")))
        return await _summary(checkout)

    async def cart_qty(args: dict[str, Any]) -> dict[str, Any]:
        await _checked(checkout.set_quantity(_int(args, "line"), _int(args, "quantity")))
        return await _summary(checkout)

    async def cart_cancel(_args: dict[str, Any]) -> dict[str, Any]:
        outcome = await _checked(checkout.cancel())
        return {"outcome": outcome, **await _summary(checkout)}

    async def pay_qr(_args: dict[str, Any]) -> dict[str, Any]:
        qr = await _checked(checkout.pay_by_qr())
        return {
            "trade_no": qr.trade_no,
            "qr_data": qr.qr_data,
            "expires_at": qr.expires_at.isoformat(),
            **await _summary(checkout),
        }

    async def reprint(args: dict[str, Any]) -> dict[str, Any]:
        sale_id = args.get("sale_id")
        if sale_id is not None and not (isinstance(sale_id, str) and sale_id):
            raise CommandError("sale_id must be a sale id string")
        try:
            job = await print_queue.reprint(sale_id)
        except ReprintError as exc:
            raise CommandError(str(exc)) from None
        return {"job": job, "print_queue": await print_queue.status()}

    control.register("sim.scan", sim_scan)
    control.register("sim.camera", sim_camera)
    control.register("cart.void", cart_void)
    control.register("cart.qty", cart_qty)
    control.register("cart.cancel", cart_cancel)
    control.register("checkout.pay_qr", pay_qr)
    control.register("reprint", reprint)


async def _feed(
    checkout: Checkout, reader: CodeReader, name: str, args: dict[str, Any]
) -> dict[str, Any]:
    code = args.get("code")
    limit = MAX_TOKEN_CHARS if isinstance(code, str) and is_pickup_token(code) else MAX_SCAN_CHARS
    if not isinstance(code, str) or not code.strip() or len(code) > limit:
        raise CommandError(f"code must be 1-{limit} characters of text")
    if not isinstance(reader, SimulatedReader):
        raise CommandError(f'the {name} is a real device; sim.{name} needs driver = "sim"')
    before = checkout.scans_handled
    reader.feed(code)
    try:
        await checkout.wait_for_scans(before + 1, SCAN_ANSWER_WITHIN_S)
    except TimeoutError:
        raise CommandError(
            f"the {name} task did not deliver the code; see `edged status`"
        ) from None
    return await _summary(checkout)


async def _summary(checkout: Checkout) -> dict[str, Any]:
    status = await checkout.status()
    return {key: status[key] for key in ("state", "sale", "display")}


async def _checked(action: Awaitable[T]) -> T:
    try:
        return await action
    except CheckoutError as exc:
        raise CommandError(str(exc)) from None
    except StoreUnwritable as exc:
        raise CommandError(f"sales stopped: the store cannot write ({exc.reason})") from None


def _int(args: dict[str, Any], key: str) -> int:
    value = args.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise CommandError(f"{key} must be a whole number")
    return value
