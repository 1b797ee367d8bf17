"""`cmd/stock`: the backend changes prices, names and stock; the kiosk sells at the new price.

These drive the handler inside a store transaction, as the link does once a message passed its
signature, expiry and replay checks (tests/e2e/test_stock_over_mqtt.py goes through a broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edged.contract.envelope import Envelope, make_envelope
from edged.contract.topics import DeviceTopics
from edged.link.downlink import HandlerRejected
from edged.runtime.clock import SystemClock
from edged.services.checkout import messages as M
from edged.services.stock.catalog import Catalog
from edged.services.stock.updates import StockUpdates
from edged.store import Store
from edged.store.outbox import Outbox
from tests.checkout.conftest import COLA, WATER, Kiosk, KioskFactory

NEW_PRODUCT = "4006381333931"


def stock_update(version: int, *items: dict[str, Any], **extra: Any) -> Envelope:
    return make_envelope(
        type="stock.update",
        device="kiosk-1",
        seq=version,
        body={"version": version, "items": list(items), **extra},
        now=datetime.now(UTC),
        clock_synced=True,
        ttl=timedelta(minutes=5),
    )


async def apply(kiosk: Kiosk, updates: StockUpdates, envelope: Envelope) -> None:
    async with kiosk.store.transaction() as tx:
        await updates.handle_downlink(envelope, tx, None)


async def catalog(kiosk: Kiosk) -> list[tuple[Any, ...]]:
    rows = await kiosk.store.fetchall(
        "SELECT p.barcode, p.name, p.price_fen, p.active, p.price_version, s.quantity "
        "FROM products p JOIN stock s USING (barcode) ORDER BY p.barcode"
    )
    return [tuple(r) for r in rows]


async def reports(kiosk: Kiosk) -> list[dict[str, Any]]:
    rows = await kiosk.store.fetchall(
        "SELECT payload FROM outbox WHERE topic LIKE '%/evt/stock' ORDER BY seq"
    )
    return [json.loads(r["payload"]) for r in rows]


async def line_prices(kiosk: Kiosk) -> list[tuple[str, int, int]]:
    assert kiosk.checkout.sale is not None
    return [
        (line.barcode, line.unit_price_fen, line.quantity) for line in kiosk.checkout.sale.lines
    ]


async def test_a_new_price_holds_for_the_next_scan_not_for_lines_already_scanned(
    make_kiosk: KioskFactory,
) -> None:
    kiosk = await make_kiosk(printing=False)
    updates = StockUpdates(kiosk.outbox)
    await kiosk.scan(WATER)

    update = stock_update(1, {"barcode": WATER, "price_fen": 250})
    await apply(kiosk, updates, update)
    await kiosk.scan(WATER)

    assert await line_prices(kiosk) == [(WATER, 200, 1), (WATER, 250, 1)]
    assert kiosk.headline == "农夫山泉 饮用天然水 550ml ¥2.50"
    [report] = await reports(kiosk)
    assert report["type"] == "stock.applied"
    assert report["body"] == {
        "update_id": update.id,
        "version": 1,
        "applied": [
            {
                "barcode": WATER,
                "name": "农夫山泉 饮用天然水 550ml",
                "price_fen": 250,
                "active": True,
                "quantity": 120,
                "version": 1,
            }
        ],
        "stale": [],
    }
    assert await updates.status() == {
        "latest_version": 1,
        "updates": 1,
        "products_changed": 1,
        "products_stale": 0,
    }


async def test_an_update_older_than_the_product_never_rolls_its_price_back(
    make_kiosk: KioskFactory,
) -> None:
    kiosk = await make_kiosk(printing=False)
    updates = StockUpdates(kiosk.outbox)
    await apply(kiosk, updates, stock_update(5, {"barcode": WATER, "price_fen": 300}))

    late = stock_update(
        3, {"barcode": WATER, "price_fen": 100}, {"barcode": COLA, "price_fen": 400}
    )
    await apply(kiosk, updates, late)

    prices = {row[0]: (row[2], row[4]) for row in await catalog(kiosk)}
    assert prices[WATER] == (300, 5), "version 5 stands"
    assert prices[COLA] == (400, 3), "COLA had no newer version, so 3 applies to it"
    report = (await reports(kiosk))[-1]["body"]
    assert report["stale"] == [WATER]
    assert [level["barcode"] for level in report["applied"]] == [COLA]


async def test_a_delivery_adds_stock_and_a_stock_take_sets_it(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk(printing=False)
    updates = StockUpdates(kiosk.outbox)

    await apply(kiosk, updates, stock_update(1, {"barcode": WATER, "delta": 24}))
    await apply(kiosk, updates, stock_update(2, {"barcode": COLA, "quantity": 7}))

    stock = {row[0]: row[5] for row in await catalog(kiosk)}
    assert (stock[WATER], stock[COLA]) == (144, 7)


async def test_a_product_the_backend_adds_can_be_sold_and_one_it_retires_cannot(
    make_kiosk: KioskFactory,
) -> None:
    kiosk = await make_kiosk(printing=False)
    updates = StockUpdates(kiosk.outbox)

    await apply(
        kiosk,
        updates,
        stock_update(
            1,
            {
                "barcode": NEW_PRODUCT,
                "name": "百岁山 矿泉水 570ml",
                "price_fen": 300,
                "quantity": 12,
            },
            {"barcode": COLA, "active": False},
        ),
    )
    await kiosk.scan(NEW_PRODUCT)
    await kiosk.scan(COLA)

    assert await line_prices(kiosk) == [(NEW_PRODUCT, 300, 1)]
    assert kiosk.headline == M.PRODUCT_NOT_FOUND


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"version": 1, "items": [{"barcode": WATER, "price_fen": 2.5}]}, "price_fen"),
        ({"version": 1, "items": [{"barcode": WATER, "price_fen": "250"}]}, "price_fen"),
        ({"version": 1, "items": [{"barcode": WATER, "price_fen": -1}]}, "price_fen"),
        ({"version": 1, "items": [{"barcode": "4006381333932", "price_fen": 1}]}, "product code"),
        ({"version": 1, "items": [{"barcode": "<script>", "price_fen": 1}]}, "product code"),
        ({"version": 1, "items": [{"barcode": "69 01", "price_fen": 1}]}, "barcode"),
        ({"version": 1, "items": [{"barcode": WATER, "quantity": 1, "delta": 1}]}, "not both"),
        ({"version": 1, "items": [{"barcode": WATER}]}, "change something"),
        ({"version": 1, "items": [{"barcode": WATER, "price_fen": 1}] * 2}, "twice"),
        ({"version": 1, "items": []}, "items"),
        ({"version": 0, "items": [{"barcode": WATER, "price_fen": 1}]}, "version"),
        ({"version": 1, "items": [{"barcode": WATER, "cost": 1}]}, "cost"),
        (
            {
                "version": 1,
                "items": [
                    {"barcode": WATER, "price_fen": 999},
                    {"barcode": NEW_PRODUCT, "quantity": 5},
                ],
            },
            f"new product {NEW_PRODUCT} needs a name and a price_fen",
        ),
    ],
)
async def test_a_bad_update_is_refused_whole_and_changes_nothing(
    make_kiosk: KioskFactory, body: dict[str, Any], reason: str
) -> None:
    kiosk = await make_kiosk(printing=False)
    updates = StockUpdates(kiosk.outbox)
    before = await catalog(kiosk)
    envelope = stock_update(1, {"barcode": WATER, "price_fen": 1})
    envelope = envelope.model_copy(update={"body": body})

    with pytest.raises(HandlerRejected, match=reason):
        await apply(kiosk, updates, envelope)

    assert await catalog(kiosk) == before
    assert await reports(kiosk) == []
    assert (await updates.status())["refused"] == 1


near_items = st.fixed_dictionaries(
    {"barcode": st.one_of(st.sampled_from([WATER, COLA, NEW_PRODUCT, "69012341"]), st.text())},
    optional={
        "name": st.one_of(st.text(max_size=70), st.none(), st.integers()),
        "price_fen": st.one_of(st.integers(), st.floats(), st.text(max_size=4), st.booleans()),
        "active": st.one_of(st.booleans(), st.integers(), st.none()),
        "quantity": st.one_of(st.integers(), st.floats()),
        "delta": st.one_of(st.integers(), st.floats()),
    },
)
near_updates = st.fixed_dictionaries(
    {
        "version": st.one_of(st.integers(), st.floats(), st.text(max_size=3)),
        "items": st.lists(near_items, max_size=4),
    }
)


@given(body=near_updates)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_junk_updates_are_refused_or_applied_never_crash(
    tmp_path: Path, body: dict[str, Any]
) -> None:
    asyncio.run(_deliver(tmp_path / uuid.uuid4().hex, body))


async def _deliver(folder: Path, body: dict[str, Any]) -> None:
    store = await Store.open(folder / "edged.db", SystemClock())
    try:
        await Catalog(store).seed_if_empty(None)
        updates = StockUpdates(Outbox(store, DeviceTopics("site", "kiosk-1")))
        envelope = stock_update(1, {"barcode": WATER, "price_fen": 1})
        with contextlib.suppress(HandlerRejected):
            async with store.transaction() as tx:
                await updates.handle_downlink(envelope.model_copy(update={"body": body}), tx, None)
        rows = await store.fetchall("SELECT price_fen, typeof(price_fen) FROM products")
        assert all(r[1] == "integer" and r[0] >= 0 for r in rows), "money stays integer fen"
    finally:
        await store.close()
