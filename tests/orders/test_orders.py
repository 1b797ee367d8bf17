"""Mini-program orders at the device: signed cmd/order stored once, a pick ticket printed,
ready by staff or at once for a pre-stocked slot, collected once by an offline-verified QR or
a typed code (with lockout), each status a committed fact with its evt/order report."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edged.cloudsim.orders import OrderDesk, Signed
from edged.contract.bodies import OrderCollect
from edged.contract.envelope import decode_envelope
from edged.contract.topics import DeviceTopics
from edged.link.downlink import HandlerRejected
from edged.runtime.clock import SystemClock
from edged.services.orders import messages as M
from edged.services.orders.service import OrdersService
from edged.services.printing.queue import PrintQueue
from edged.services.release.service import ReleaseService, ReleaseSettings
from edged.services.stock.catalog import Catalog
from edged.store import Store
from edged.store.outbox import Outbox
from hal.display.sim import SimulatedDisplay
from hal.printer.sim import SimulatedPrinter
from hal.release.door import RelayDoor
from hal.release.sim import RelayCommand, SimulatedDoorSensor, SimulatedRelay

HERE = DeviceTopics("s1", "vend-1")
ELSEWHERE = DeviceTopics("s1", "vend-2")
WATER = "6901028075831"


@dataclass
class Shop:
    store: Store
    outbox: Outbox
    display: SimulatedDisplay
    printer: SimulatedPrinter
    relay: SimulatedRelay
    orders: OrdersService
    desk: OrderDesk
    tasks: list[asyncio.Task[None]]

    async def deliver(self, signed: Signed) -> None:
        envelope = decode_envelope(signed.payload)
        async with self.store.transaction() as tx:
            await self.orders.handle_downlink(envelope, tx, None)

    async def statuses(self, order_id: str) -> list[str]:
        rows = await self.store.fetchall(
            "SELECT payload FROM outbox WHERE topic LIKE '%/evt/order' ORDER BY seq"
        )
        out = []
        for row in rows:
            envelope = json.loads(row[0])
            if envelope["type"] == "order.status" and envelope["body"]["order_id"] == order_id:
                out.append(envelope["body"]["status"])
        return out

    async def state(self, order_id: str) -> str:
        row = await self.store.fetchone("SELECT state FROM orders WHERE id = ?", (order_id,))
        assert row is not None
        return str(row[0])

    async def stock(self, barcode: str) -> int:
        row = await self.store.fetchone("SELECT quantity FROM stock WHERE barcode = ?", (barcode,))
        assert row is not None
        return int(row[0])

    async def eventually(self, check: object, within_s: float = 3.0) -> None:
        async with asyncio.timeout(within_s):
            while not await check():  # type: ignore[operator]  # noqa: ASYNC110
                await asyncio.sleep(0.01)

    async def place(self, **kwargs: object) -> tuple[str, str]:
        order, signed = self.desk.place(HERE, **kwargs)  # type: ignore[arg-type]
        await self.deliver(signed)
        return order.order_id, order.code


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Shop]:
    store = await Store.open(tmp_path / "edged.db", SystemClock())
    await Catalog(store).seed_if_empty(None)
    outbox = Outbox(store, HERE)
    display = SimulatedDisplay()
    printer = SimulatedPrinter(tmp_path / "printer", 58, "gb18030")
    queue = PrintQueue(store, printer, retry_initial_s=0.01, retry_max_s=0.05)
    relay = SimulatedRelay()
    device = RelayDoor(relay, SimulatedDoorSensor(4, shopper="manual"), 4)
    releases = ReleaseService(store, outbox, device, display, ReleaseSettings(1, 5.0, 30.0, 60.0))
    key = Ed25519PrivateKey.generate()
    orders = OrdersService(
        store,
        outbox,
        HERE,
        [key.public_key()],
        display,
        print_queue=queue,
        releases=releases,
        slots=4,
    )
    tasks = [asyncio.create_task(run()) for run in (queue.run, releases.run, orders.run)]
    yield Shop(store, outbox, display, printer, relay, orders, OrderDesk(key), tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await store.close()


async def test_an_order_is_stored_once_and_its_pick_ticket_prints(shop: Shop) -> None:
    order, signed = shop.desk.place(HERE)
    await shop.deliver(signed)
    await shop.deliver(signed)  # a second delivery of the same order changes nothing

    async def printed() -> bool:
        return await shop.state(order.order_id) == "ticket_printed"

    await shop.eventually(printed)
    assert await shop.statuses(order.order_id) == ["received", "ticket_printed"]
    assert shop.printer.printed == 1
    ticket = next(shop.printer.output_dir.glob("*.bin")).read_bytes()
    assert "拣货单".encode("gb18030") in ticket and order.order_id.encode() in ticket
    assert shop.orders.rejected["duplicate"] == 1


async def test_counter_pickup_by_qr_after_staff_prepared_it(shop: Shop) -> None:
    order_id, _ = await shop.place()
    token = shop.desk.pickup_token(order_id)
    early = await shop.orders.pickup_by_token(token)
    assert (early.ok, early.message) == (False, M.NOT_READY)
    assert await shop.orders.mark_ready(order_id)
    before = await shop.stock(WATER)
    outcome = await shop.orders.pickup_by_token(token)
    assert (outcome.ok, outcome.message) == (True, M.COLLECTED_COUNTER)
    assert await shop.stock(WATER) == before - 2  # stock moves when the order is collected

    async def slip_printed() -> bool:
        return shop.printer.printed == 2  # the pick ticket, then the collection slip

    await shop.eventually(slip_printed)
    slip = sorted(shop.printer.output_dir.glob("*.txt"))[-1].read_text(encoding="utf-8")
    assert "取货单 Collection slip" in slip and order_id in slip
    statuses = await shop.statuses(order_id)
    assert statuses[-2:] == ["ready", "collected"]
    again = await shop.orders.pickup_by_token(token)
    assert not again.ok and again.reason == "already_collected"
    assert again.message.startswith("该订单已于 ") and "at vend-1 counter" in again.message
    assert await shop.stock(WATER) == before - 2 and (await shop.statuses(order_id)) == statuses


async def test_a_prestocked_slot_order_is_ready_at_once_and_opens_its_slot(shop: Shop) -> None:
    order_id, _ = await shop.place(collect=OrderCollect(mode="slot", slot=3, prestocked=True))
    assert (await shop.statuses(order_id))[:2] == ["received", "ready"]
    outcome = await shop.orders.pickup_by_token(shop.desk.pickup_token(order_id))
    assert (outcome.ok, outcome.message) == (True, M.COLLECTED_SLOT.format(slot=3))

    async def unlocked() -> bool:
        row = await shop.store.fetchone(
            "SELECT state FROM releases WHERE order_id = ?", (order_id,)
        )
        return row is not None and row[0] == "unlocked"

    await shop.eventually(unlocked)
    assert [c for c in shop.relay.commands if c.on] == [RelayCommand(3, True)]


@pytest.mark.parametrize(
    ("how", "reason", "message"),
    [
        ("forged", "forged", M.FORGED),
        ("expired", "expired", M.EXPIRED),
        ("other device", "other_device", M.OTHER_DEVICE),
        ("garbage", "forged", M.FORGED),
    ],
)
async def test_bad_tokens_are_refused_and_change_nothing(
    shop: Shop, how: str, reason: str, message: str
) -> None:
    order_id, _ = await shop.place(collect=OrderCollect(mode="slot", slot=1, prestocked=True))
    token = {
        "forged": lambda: _forged(shop, order_id),
        "expired": lambda: shop.desk.pickup_token(order_id, ttl_s=-1),
        "other device": lambda: shop.desk.pickup_token(order_id, device=ELSEWHERE),
        "garbage": lambda: "EDPK1:not-a-token!!",
    }[how]()
    before = await shop.statuses(order_id)
    outcome = await shop.orders.pickup_by_token(token)
    assert (outcome.ok, outcome.reason, outcome.message) == (False, reason, message)
    assert shop.display.current is not None and shop.display.current.headline == message
    assert await shop.state(order_id) == "ready" and await shop.statuses(order_id) == before
    assert shop.relay.unlocks == 0


def _forged(shop: Shop, order_id: str) -> str:
    forger = OrderDesk(Ed25519PrivateKey.generate())
    forger.orders = shop.desk.orders
    return forger.pickup_token(order_id)


async def test_code_entry_works_and_locks_after_five_wrong_codes(shop: Shop) -> None:
    first, first_code = await shop.place()
    second, second_code = await shop.place()
    await shop.orders.mark_ready(first)
    await shop.orders.mark_ready(second)
    ok = await shop.orders.pickup_by_code(first_code)
    assert ok.ok and ok.order_id == first
    wrong = "000000" if "000000" not in (first_code, second_code) else "999999"
    lefts = [(await shop.orders.pickup_by_code(wrong)).message for _ in range(4)]
    assert lefts == [M.WRONG_CODE.format(left=n) for n in (4, 3, 2, 1)]
    fifth = await shop.orders.pickup_by_code(wrong)
    assert fifth.reason == "locked" and fifth.message.startswith("错误次数过多")
    locked = await shop.orders.pickup_by_code(second_code)  # even the right code waits now
    assert locked.reason == "locked" and await shop.state(second) == "ready"
    assert (await shop.orders.pickup_by_code("12ab")).message == M.CODE_FORMAT


async def test_cancelled_and_expired_orders_cannot_be_collected(shop: Shop) -> None:
    cancelled, code = await shop.place()
    await shop.deliver(shop.desk.cancel(cancelled))
    assert await shop.state(cancelled) == "cancelled"
    outcome = await shop.orders.pickup_by_code(code)
    assert outcome.reason == "cancelled"
    expiring, _ = await shop.place(valid_s=0.2)

    async def expired() -> bool:
        return await shop.state(expiring) == "expired"

    await shop.eventually(expired)
    assert (await shop.statuses(expiring))[-1] == "expired"


async def test_malformed_or_impossible_orders_are_rejected(shop: Shop) -> None:
    _, signed = shop.desk.place(HERE, collect=OrderCollect(mode="slot", slot=9))
    with pytest.raises(HandlerRejected, match="slot 9 does not exist"):
        await shop.deliver(signed)
    assert await shop.store.fetchall("SELECT id FROM orders") == []
