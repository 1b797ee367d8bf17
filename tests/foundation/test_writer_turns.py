"""Turns at the store's writer: a fact never queues behind bookkeeping that has not begun.

Pinned as orders of events: who held the writer after whom, and when `facts_quiet` (what
the outbox pump waits on) was set.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from edged.runtime.clock import SystemClock
from edged.store import Store
from edged.store.writer_turns import WriterTurns
from tests.support.polling import until


async def take(turns: WriterTurns, name: str, fact: bool, order: list[str]) -> None:
    async with turns.turn(fact=fact):
        order.append(name)
        await asyncio.sleep(0)


async def test_facts_go_before_waiting_bookkeeping_and_each_class_keeps_its_order() -> None:
    turns = WriterTurns()
    order: list[str] = []
    holder = turns.turn(fact=False)
    await holder.__aenter__()  # a delivered mark is writing
    waiting = [
        asyncio.create_task(take(turns, name, fact, order))
        for name, fact in [("mark-1", False), ("scan-1", True), ("mark-2", False), ("sale", True)]
    ]
    await until(lambda: turns.waiting == 4)
    await holder.__aexit__(None, None, None)
    await asyncio.gather(*waiting)
    assert order == ["scan-1", "sale", "mark-1", "mark-2"]


async def test_bookkeeping_takes_a_free_writer_but_not_a_fact_s_place() -> None:
    turns = WriterTurns()
    order: list[str] = []
    await take(turns, "mark", False, order)  # nobody waiting: at once
    fact = turns.turn()
    await fact.__aenter__()
    mark = asyncio.create_task(take(turns, "mark-2", False, order))
    scan = asyncio.create_task(take(turns, "scan", True, order))
    await until(lambda: turns.waiting == 2)
    await fact.__aexit__(None, None, None)
    await asyncio.gather(mark, scan)
    assert order == ["mark", "scan", "mark-2"]


async def test_a_waiter_cancelled_in_the_queue_or_as_it_is_let_in_passes_the_turn_on() -> None:
    turns = WriterTurns()
    order: list[str] = []
    holder = turns.turn()
    await holder.__aenter__()
    gone = asyncio.create_task(take(turns, "gone", True, order))
    next_fact = asyncio.create_task(take(turns, "next", True, order))
    await until(lambda: turns.waiting == 2)
    gone.cancel()  # cancelled while queued
    await asyncio.gather(gone, return_exceptions=True)
    await holder.__aexit__(None, None, None)
    await next_fact
    assert order == ["next"]

    holder = turns.turn()
    await holder.__aenter__()
    granted_then_cancelled = asyncio.create_task(take(turns, "late", True, order))
    after = asyncio.create_task(take(turns, "after", False, order))
    await until(lambda: turns.waiting == 2)
    await holder.__aexit__(None, None, None)  # the turn is handed to "late" ...
    granted_then_cancelled.cancel()  # ... which is cancelled before it runs
    await asyncio.gather(granted_then_cancelled, return_exceptions=True)
    await after
    assert order == ["next", "after"]
    await take(turns, "free", True, order)
    assert order[-1] == "free", "the writer is free again"


async def test_facts_quiet_is_clear_from_the_moment_a_fact_asks_until_it_is_written() -> None:
    turns = WriterTurns()
    assert turns.facts_quiet.is_set()
    mark = turns.turn(fact=False)
    await mark.__aenter__()
    assert turns.facts_quiet.is_set(), "bookkeeping does not hold the pump"
    scan = asyncio.create_task(take(turns, "scan", True, []))
    await until(lambda: turns.waiting == 1)
    assert not turns.facts_quiet.is_set(), "a fact waiting is enough"
    await mark.__aexit__(None, None, None)
    await scan
    assert turns.facts_quiet.is_set()


async def test_the_store_holds_the_pump_while_a_sale_commits(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "edged.db", SystemClock())
    try:
        waiter_done = asyncio.Event()

        async def pump_turn() -> None:
            await store.facts_written()
            waiter_done.set()

        async with store.transaction() as tx:
            await tx.execute("INSERT INTO sequences (name, value) VALUES ('t', 1)")
            pump = asyncio.create_task(pump_turn())
            for _ in range(5):
                await asyncio.sleep(0)
            assert not waiter_done.is_set(), "the pump waits while the fact is open"
        await pump
        assert waiter_done.is_set()
    finally:
        await store.close()
