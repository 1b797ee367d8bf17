"""Vending: goods leave only against a committed, paid sale, once, and every door event is a
committed fact with its `txn.release` report (relay = the simulated relay's command log)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edged.services.payments.protocol import PaymentOutcome
from edged.services.release import messages as M
from edged.services.release.gate import DisplayGate
from hal.display.view import DisplayView
from hal.release.sim import RelayCommand
from tests.release.harness import Counter, eventually, make_counter

ON, OFF = RelayCommand(1, True), RelayCommand(1, False)


@pytest.fixture
async def counter(tmp_path: Path) -> AsyncIterator[Counter]:
    made = await make_counter(tmp_path)
    yield made
    await made.stop()


async def until_state(counter: Counter, sale_id: str, state: str) -> None:
    async def reached() -> bool:
        return await counter.state(sale_id) == state

    await eventually(reached)


async def test_a_paid_sale_unlocks_once_and_reports_every_door_event(counter: Counter) -> None:
    sale = await counter.new_sale()
    await counter.pay(sale)
    await until_state(counter, sale, "unlocked")
    assert counter.relay.commands[-1] == ON and counter.relay.unlocks == 1
    assert counter.headline == M.DOOR_OPEN
    counter.door.set_door(1, True)
    await until_state(counter, sale, "opened")
    assert counter.relay.commands[-1] == OFF  # locked again: the door latches when it shuts
    counter.door.set_door(1, False)
    await until_state(counter, sale, "closed")
    assert counter.headline == M.THANK_YOU
    assert await counter.reports() == [
        (sale, "pending", False),
        (sale, "unlocked", False),
        (sale, "opened", False),
        (sale, "closed", False),
    ]
    assert counter.relay.unlocks == 1 and await counter.refund_marks() == []
    [release] = await counter.releases()
    assert release["ended_at"] is not None


async def test_the_pending_release_commits_with_the_payment_or_not_at_all(
    counter: Counter,
) -> None:
    sale = await counter.new_sale()
    counter.inner.refuse = True  # checkout rejects the settlement: the transaction rolls back
    with pytest.raises(RuntimeError, match="rejected"):
        await counter.pay(sale)
    assert await counter.releases() == []
    counter.inner.refuse = False
    for outcome in (PaymentOutcome.FAILED, PaymentOutcome.CANCELLED):
        await counter.pay(sale, outcome)  # declined, reversed, closed: nothing to release
    assert await counter.releases() == [] and counter.relay.unlocks == 0


async def test_a_second_success_for_the_same_sale_never_unlocks_again(counter: Counter) -> None:
    sale = await counter.new_sale()
    await counter.pay(sale)
    await until_state(counter, sale, "unlocked")
    counter.door.set_door(1, True)
    await until_state(counter, sale, "opened")
    counter.door.set_door(1, False)
    await until_state(counter, sale, "closed")
    await counter.pay(sale)  # a redelivered or replayed SUCCESS
    await counter.pay(sale)
    assert len(await counter.releases()) == 1
    assert counter.relay.unlocks == 1


async def test_a_door_not_opened_in_time_relocks_and_marks_the_sale_for_refund(
    tmp_path: Path,
) -> None:
    counter = await make_counter(tmp_path, open_within_s=0.2)
    try:
        sale = await counter.new_sale()
        await counter.pay(sale)
        await until_state(counter, sale, "not_opened")
        assert counter.relay.commands == [ON, OFF]
        assert await counter.refund_marks() == [{"sale_id": sale, "reason": "goods_not_released"}]
        assert (await counter.reports())[-1] == (sale, "not_opened", True)
        [release] = await counter.releases()
        assert release["reason"] == "not opened within 0 s; relocked"
        assert counter.headline == M.NOT_OPENED
    finally:
        await counter.stop()


async def test_a_door_left_open_raises_the_alarm_until_it_closes(tmp_path: Path) -> None:
    counter = await make_counter(tmp_path, left_open_s=0.2)
    try:
        sale = await counter.new_sale()
        await counter.pay(sale)
        await until_state(counter, sale, "unlocked")
        counter.door.set_door(1, True)
        await until_state(counter, sale, "left_open")
        status = await counter.service.status()
        assert status["alarm"] == "door left open: slot 1"
        assert counter.headline == M.DOOR_LEFT_OPEN
        device = counter.device.status()
        assert (device.ok, device.detail) == (False, "left open: slot 1")
        counter.door.set_door(1, False)
        await until_state(counter, sale, "closed")
        assert (await counter.service.status())["alarm"] is None
        assert [state for _, state, _ in await counter.reports()] == [
            "pending", "unlocked", "opened", "left_open", "closed"
        ]  # fmt: skip
        assert await counter.refund_marks() == []  # the goods were taken
    finally:
        await counter.stop()


async def test_restart_inside_the_window_unlocks_the_paid_sale_once(tmp_path: Path) -> None:
    before = await make_counter(tmp_path, start=False)  # crash between PAID and the unlock
    sale = await before.new_sale()
    await before.pay(sale)
    await before.age_payment(sale, 20)
    await before.stop()
    after = await make_counter(tmp_path, restart_window_s=60)
    try:
        await until_state(after, sale, "unlocked")
        assert after.relay.unlocks == 1
        assert await after.refund_marks() == []
    finally:
        await after.stop()


async def test_restart_outside_the_window_never_unlocks_and_marks_for_refund(
    tmp_path: Path,
) -> None:
    before = await make_counter(tmp_path, start=False)
    sale = await before.new_sale()
    await before.pay(sale)
    await before.age_payment(sale, 61)
    await before.stop()
    after = await make_counter(tmp_path, restart_window_s=60)
    try:
        await until_state(after, sale, "not_opened")
        assert after.relay.unlocks == 0
        assert await after.refund_marks() == [{"sale_id": sale, "reason": "goods_not_released"}]
        [release] = await after.releases()
        assert release["reason"] == "not unlocked: 61 s after payment, the window is 60 s"
    finally:
        await after.stop()


async def test_restart_after_the_unlock_never_unlocks_again(tmp_path: Path) -> None:
    before = await make_counter(tmp_path)
    sale = await before.new_sale()
    await before.pay(sale)
    await until_state(before, sale, "unlocked")
    await before.stop()  # killed while the door was unlocked
    after = await make_counter(tmp_path)
    try:
        await until_state(after, sale, "failed")
        assert after.relay.unlocks == 0
        [release] = await after.releases()
        assert release["reason"] == "edged stopped while the door was unlocked; staff must check"
        assert await after.refund_marks() == []  # unknown whether goods left: staff decide
        assert (await after.service.status())["failed"][0]["sale_id"] == sale
    finally:
        await after.stop()


async def test_a_door_found_open_at_restart_is_watched_until_it_closes(tmp_path: Path) -> None:
    before = await make_counter(tmp_path)
    sale = await before.new_sale()
    await before.pay(sale)
    await until_state(before, sale, "unlocked")
    before.door.set_door(1, True)
    await until_state(before, sale, "opened")
    await before.stop()
    after = await make_counter(tmp_path, start=False)
    after.door.set_door(1, True)  # still open when edged comes back
    after.start()
    await eventually(lambda: _followed_nothing(after))
    assert await after.state(sale) == "opened"
    after.door.set_door(1, False)
    try:
        await until_state(after, sale, "closed")
        assert after.relay.unlocks == 0
    finally:
        await after.stop()


async def _followed_nothing(counter: Counter) -> bool:
    return counter.task is not None and not counter.task.done() and counter.device.status().ok


async def test_a_relay_that_cannot_switch_fails_the_release_and_marks_for_refund(
    counter: Counter,
) -> None:
    async def broken(slot: int, on: bool) -> None:
        from hal.device import DeviceError

        raise DeviceError("relay board at /dev/edged-relay failed: write timeout")

    counter.relay.set = broken  # type: ignore[method-assign]
    sale = await counter.new_sale()
    await counter.pay(sale)
    await until_state(counter, sale, "failed")
    [release] = await counter.releases()
    assert release["reason"] == "relay board at /dev/edged-relay failed: write timeout"
    assert await counter.refund_marks() == [{"sale_id": sale, "reason": "goods_not_released"}]
    assert counter.headline == M.NOT_RELEASED


async def test_checkout_views_wait_while_the_door_is_released(counter: Counter) -> None:
    gate = counter.service.gate = DisplayGate(counter.display, after_release_s=0.1)
    welcome = DisplayView(headline="欢迎光临 Welcome", lines=["请扫描商品条码 Please scan an item"])
    await gate.show(welcome)
    assert counter.headline == welcome.headline  # no release: straight through
    sale = await counter.new_sale()
    await counter.pay(sale)
    await until_state(counter, sale, "unlocked")
    await gate.show(welcome)  # the receipt printed: checkout would show the welcome now
    assert counter.headline == M.DOOR_OPEN
    counter.door.set_door(1, True)
    await until_state(counter, sale, "opened")
    counter.door.set_door(1, False)
    await until_state(counter, sale, "closed")
    assert counter.headline == M.THANK_YOU

    async def welcome_back() -> bool:
        return counter.headline == welcome.headline

    await eventually(welcome_back)
    assert [view.headline for view in counter.display.frames].count(welcome.headline) == 2
