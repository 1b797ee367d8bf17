"""`op.door.unlock` on the release side: a request's release is committed before the relay is
energised, unlocked once through the same path as a sale's, and never marked for refund."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edged.services.release import messages as M
from edged.services.release import records
from edged.services.release.service import SlotBusy
from hal.device import DeviceError
from hal.release.sim import RelayCommand
from tests.release.harness import Counter, eventually, make_counter

ON = RelayCommand(1, True)
REQUEST = "req-door-0001"


async def ready(counter: Counter) -> Counter:
    async def running() -> bool:
        return counter.device.status().ok

    await eventually(running)
    return counter


@pytest.fixture
async def counter(tmp_path: Path) -> AsyncIterator[Counter]:
    made = await make_counter(tmp_path)
    yield await ready(made)
    await made.stop()


async def request_releases(counter: Counter) -> list[tuple[str | None, str, str]]:
    rows = await counter.store.fetchall(
        "SELECT request_id, state, reason FROM releases ORDER BY id"
    )
    return [(row[0], row[1], row[2]) for row in rows]


async def test_the_release_row_is_committed_before_the_relay_is_energised(
    counter: Counter,
) -> None:
    seen_at_unlock: list[list[tuple[str, str]]] = []
    energise = counter.relay.set

    async def set_relay(slot: int, on: bool) -> None:
        if on:  # what another connection reads now is what was committed before the byte
            with sqlite3.connect(counter.path / "edged.db") as reader:
                rows = reader.execute("SELECT request_id, state FROM releases").fetchall()
            seen_at_unlock.append(rows)
        await energise(slot, on)

    counter.relay.set = set_relay  # type: ignore[method-assign]

    outcome = await counter.service.unlock_for_request(REQUEST, 1)

    assert outcome.energised and outcome.release.id == 1 and outcome.release.slot == 1
    assert seen_at_unlock == [[(REQUEST, "unlocked")]]
    assert counter.relay.commands == [ON]
    assert counter.headline == M.DOOR_OPEN
    reports = await counter.store.fetchall(
        "SELECT payload FROM outbox WHERE topic LIKE '%/evt/txn' ORDER BY seq"
    )
    bodies = [(e["type"], e["body"]) for e in (json.loads(r[0]) for r in reports)]
    assert [
        (kind, b["request_id"], b["sale_id"], b["state"], b["refund_marked"]) for kind, b in bodies
    ] == [
        ("txn.release", REQUEST, None, "pending", False),
        ("txn.release", REQUEST, None, "unlocked", False),
    ]


async def test_the_same_request_never_unlocks_twice(counter: Counter) -> None:
    first = await counter.service.unlock_for_request(REQUEST, 1)
    again = await counter.service.unlock_for_request(REQUEST, 1)

    assert first.energised
    assert (again.energised, again.reason, again.release.id) == (
        False,
        "already released (unlocked)",
        first.release.id,
    )
    assert counter.relay.unlocks == 1
    assert await request_releases(counter) == [(REQUEST, "unlocked", "")]


async def test_a_slot_that_does_not_exist_or_is_released_already_writes_nothing(
    counter: Counter,
) -> None:
    with pytest.raises(
        ValueError, match=r"^slot 2 does not exist; the release device has slots 1-1$"
    ):
        await counter.service.unlock_for_request(REQUEST, 2)
    assert await request_releases(counter) == []
    sale = await counter.new_sale()
    await counter.pay(sale)

    async def unlocked() -> bool:
        return await counter.state(sale) == "unlocked"

    await eventually(unlocked)
    with pytest.raises(SlotBusy, match=r"^slot 1 is already released \(release 1\)$"):
        await counter.service.unlock_for_request(REQUEST, 1)
    assert await request_releases(counter) == [(None, "unlocked", "")]
    assert counter.relay.unlocks == 1


async def test_a_relay_that_cannot_switch_fails_the_request_without_a_refund_mark(
    counter: Counter,
) -> None:
    async def broken(slot: int, on: bool) -> None:
        raise DeviceError("relay board at /dev/edged-relay failed: write timeout")

    counter.relay.set = broken  # type: ignore[method-assign]

    outcome = await counter.service.unlock_for_request(REQUEST, 1)

    assert (outcome.energised, outcome.reason) == (
        False,
        "relay board at /dev/edged-relay failed: write timeout",
    )
    assert await request_releases(counter) == [
        (REQUEST, "failed", "relay board at /dev/edged-relay failed: write timeout")
    ]
    assert await counter.refund_marks() == []
    assert counter.headline == M.COULD_NOT_OPEN


async def test_a_request_left_pending_by_a_restart_is_never_unlocked(tmp_path: Path) -> None:
    before = await make_counter(tmp_path, start=False)
    async with before.store.transaction() as tx:  # committed, then killed before the unlock
        await tx.run(lambda s: records.create_pending_now(s, slot=1, request_id=REQUEST))
    await before.stop()
    after = await make_counter(tmp_path)
    try:

        async def ended() -> bool:
            return (await request_releases(after))[0][1] == "failed"

        await eventually(ended)
        assert await request_releases(after) == [
            (REQUEST, "failed", "edged stopped before the unlock; not unlocked")
        ]
        assert after.relay.unlocks == 0 and await after.refund_marks() == []
    finally:
        await after.stop()
