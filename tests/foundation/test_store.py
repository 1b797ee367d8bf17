"""The store: durable facts with their outbox rows, migrations, and a refusal to start unsafe."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from edged.contract.envelope import decode_envelope
from edged.contract.topics import DeviceTopics, Uplink
from edged.runtime.clock import SystemClock
from edged.store import Statements, Store, StoreError
from edged.store.checkpointer import EVERY_COMMITS
from edged.store.database import Migration, bundled_migrations
from edged.store.outbox import Outbox
from tests.support.polling import until

TOPICS = DeviceTopics("site-1", "kiosk-1")


async def open_store(path: Path) -> Store:
    return await Store.open(path, SystemClock())


async def test_a_new_store_is_wal_with_full_sync_and_every_migration(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "edged.db")
    try:
        journal = await store.fetchone("PRAGMA journal_mode")
        assert journal is not None and journal[0] == "wal"
        assert await store.schema_version() == len(bundled_migrations())
        tables = {r[0] for r in await store.fetchall("SELECT name FROM sqlite_master")}
        assert {
            "products",
            "stock",
            "sales",
            "sale_lines",
            "payments",
            "outbox",
            "inbox",
            "print_jobs",
            "config_versions",
            "sequences",
        } <= tables
        async with store.transaction() as tx:
            sync = await tx.fetchone("PRAGMA synchronous")
        assert sync is not None and sync[0] == 2  # FULL
    finally:
        await store.close()


async def test_reopening_runs_no_migration_twice(tmp_path: Path) -> None:
    path = tmp_path / "edged.db"
    store = await open_store(path)
    async with store.transaction() as tx:
        await tx.execute(
            "INSERT INTO products (barcode, name, price_fen, updated_at) VALUES (?, ?, ?, ?)",
            ("6901234567892", "矿泉水", 200, tx.now),
        )
    await store.close()

    store = await open_store(path)
    try:
        row = await store.fetchone("SELECT name, price_fen FROM products")
        assert row is not None and (row[0], row[1]) == ("矿泉水", 200)
        assert await store.schema_version() == len(bundled_migrations())
    finally:
        await store.close()


async def test_a_schema_newer_than_the_code_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "edged.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()

    with pytest.raises(StoreError, match="schema version 999 is newer"):
        await open_store(path)


async def test_a_corrupt_database_refuses_to_start_and_is_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "edged.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    before = path.read_bytes()

    with pytest.raises(StoreError, match=r"edged\.db"):
        await open_store(path)
    assert path.read_bytes() == before


async def test_a_failed_migration_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "edged.db"
    store = await open_store(path)
    await store.close()
    broken = [*bundled_migrations()]
    broken.append(
        Migration(len(broken) + 1, "9999_broken.sql", "CREATE TABLE t (x);\nNOT SQL AT ALL;")
    )

    with pytest.raises(StoreError, match=r"9999_broken\.sql failed"):
        await Store.open(path, SystemClock(), broken)

    store = await open_store(path)
    try:
        assert await store.schema_version() == len(bundled_migrations())
        names = {r[0] for r in await store.fetchall("SELECT name FROM sqlite_master")}
        assert "t" not in names
    finally:
        await store.close()


async def test_a_fact_and_its_message_commit_together(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "edged.db")
    outbox = Outbox(store, TOPICS)
    try:
        async with store.transaction() as tx:
            await tx.execute(
                "INSERT INTO sales (id, seq, state, total_fen, created_at, clock_synced, "
                "updated_at) VALUES ('s1', 1, 'paid', 1250, ?, 1, ?)",
                (tx.now, tx.now),
            )
            envelope = await outbox.add(tx, Uplink.TXN, "txn.completed", {"sale": "s1"})

        rows = await outbox.pending(10)
        assert [r.msg_id for r in rows] == [envelope.id]
        assert rows[0].topic == "edge/v1/site-1/kiosk-1/evt/txn"
        assert decode_envelope(rows[0].payload).body == {"sale": "s1"}
    finally:
        await store.close()


async def test_a_failure_inside_a_transaction_leaves_neither_fact_nor_message(
    tmp_path: Path,
) -> None:
    store = await open_store(tmp_path / "edged.db")
    outbox = Outbox(store, TOPICS)
    try:
        with pytest.raises(RuntimeError, match="printer exploded"):
            async with store.transaction() as tx:
                await tx.execute(
                    "INSERT INTO sales (id, seq, state, created_at, clock_synced, updated_at) "
                    "VALUES ('s1', 1, 'paid', ?, 1, ?)",
                    (tx.now, tx.now),
                )
                await outbox.add(tx, Uplink.TXN, "txn.completed", {"sale": "s1"})
                raise RuntimeError("printer exploded")

        assert await store.fetchall("SELECT * FROM sales") == []
        assert await outbox.pending(10) == []
    finally:
        await store.close()


async def test_uncommitted_writes_are_invisible_to_readers(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "edged.db")
    outbox = Outbox(store, TOPICS)
    try:
        async with store.transaction() as tx:
            await outbox.add(tx, Uplink.PAY, "pay.query", {"trade_no": "T1"})
            assert await outbox.pending(10) == [], "the pump must not see an uncommitted row"
        assert len(await outbox.pending(10)) == 1
    finally:
        await store.close()


async def test_sequences_survive_a_restart_and_never_repeat(tmp_path: Path) -> None:
    path = tmp_path / "edged.db"
    seen = []
    for _ in range(2):
        store = await open_store(path)
        outbox = Outbox(store, TOPICS)
        for _ in range(3):
            async with store.transaction() as tx:
                seen.append((await outbox.add(tx, Uplink.STOCK, "stock.delta", {})).seq)
        await store.close()
    assert seen == [1, 2, 3, 4, 5, 6]


async def test_money_messages_drain_before_telemetry(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "edged.db")
    outbox = Outbox(store, TOPICS)
    try:
        async with store.transaction() as tx:
            await outbox.add(tx, Uplink.HEALTH, "health", {"n": 1})
            await outbox.add(tx, Uplink.TXN, "txn.completed", {"n": 2})
            await outbox.add(tx, Uplink.HEALTH, "health", {"n": 3})
            await outbox.add(tx, Uplink.PAY, "pay.query", {"n": 4})
        order = [decode_envelope(r.payload).body["n"] for r in await outbox.pending(10)]
        assert order == [2, 4, 1, 3]
        assert await outbox.shed_telemetry() == 2
        assert [decode_envelope(r.payload).body["n"] for r in await outbox.pending(10)] == [2, 4]
    finally:
        await store.close()


async def test_work_run_in_the_writer_thread_commits_or_rolls_back_as_one(tmp_path: Path) -> None:
    import threading

    store = await open_store(tmp_path / "edged.db")
    outbox = Outbox(store, TOPICS)
    announced: list[str] = []
    try:

        def sell(s: Statements) -> str:
            s.execute(
                "INSERT INTO sales (id, seq, state, created_at, clock_synced, updated_at) "
                "VALUES ('s1', ?, 'paid', ?, 1, ?)",
                (s.next_sequence("sale"), s.now, s.now),
            )
            s.after.append(lambda: announced.append(threading.current_thread().name))
            return outbox.write(s, Uplink.TXN, "txn.completed", {"sale": "s1"}).id

        async with store.transaction() as tx:
            msg_id = await tx.run(sell)
        assert announced == [threading.current_thread().name], "after-callbacks run on the loop"
        assert [r.msg_id for r in await outbox.pending(10)] == [msg_id]

        def sell_then_fail(s: Statements) -> None:
            s.execute("UPDATE sales SET state = 'void' WHERE id = 's1'")
            outbox.write(s, Uplink.TXN, "txn.voided", {"sale": "s1"})
            raise RuntimeError("power cut")

        with pytest.raises(RuntimeError, match="power cut"):
            async with store.transaction() as tx:
                await tx.run(sell_then_fail)
        row = await store.fetchone("SELECT state FROM sales WHERE id = 's1'")
        assert row is not None and row[0] == "paid"
        assert len(await outbox.pending(10)) == 1
    finally:
        await store.close()


async def test_a_transaction_cancelled_before_its_first_hop_ran_leaves_nothing_open(
    tmp_path: Path,
) -> None:
    """As at shutdown: a task is cancelled while its statement still waits in the writer
    thread's queue; that statement runs later, and must be rolled back, not left open."""
    import asyncio
    import threading

    from edged.store.database import _in_writer_thread
    from tests.support.polling import until

    store = await open_store(tmp_path / "edged.db")
    try:
        gate = threading.Event()
        busy = asyncio.create_task(_in_writer_thread(store._writer, lambda: gate.wait(10)))

        async def sell() -> None:
            async with store.transaction() as tx:
                await tx.execute(
                    "INSERT INTO sales (id, seq, state, created_at, clock_synced, updated_at) "
                    "VALUES ('cancelled', 1, 'paid', ?, 1, ?)",
                    (tx.now, tx.now),
                )

        sale = asyncio.create_task(sell())
        # The sale's statement waits in the writer thread's queue (aiosqlite's), behind `busy`.
        await until(lambda: store._writer._tx.qsize() >= 1, what="the sale's hop queued")
        assert not busy.done()
        sale.cancel()
        gate.set()
        await asyncio.gather(sale, busy, return_exceptions=True)
        assert sale.cancelled()

        async with store.transaction() as tx:
            await tx.execute(
                "INSERT INTO sales (id, seq, state, created_at, clock_synced, updated_at) "
                "VALUES ('next', 2, 'paid', ?, 1, ?)",
                (tx.now, tx.now),
            )
        ids = [r[0] for r in await store.fetchall("SELECT id FROM sales")]
        assert ids == ["next"]
    finally:
        await store.close()


async def test_work_deferred_to_the_commit_costs_one_hop_and_commits_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scan or a payment result is one trip to the writer thread: BEGIN, work, COMMIT."""
    import edged.store.database as database

    hops = 0
    real_hop = database._in_writer_thread

    async def counted(conn: Any, work: Any) -> Any:
        nonlocal hops
        hops += 1
        return await real_hop(conn, work)

    store = await open_store(tmp_path / "edged.db")
    try:
        monkeypatch.setattr(database, "_in_writer_thread", counted)
        async with store.transaction() as tx:
            first = tx.defer(lambda s: s.next_sequence("sale"))
            second = tx.defer(lambda s: s.next_sequence("sale"))
            assert not first.done(), "deferred work waits for the next hop"
        assert hops == 1
        assert (first.result(), second.result()) == (1, 2), "deferred work runs in order"
        row = await store.fetchone("SELECT value FROM sequences WHERE name = 'sale'")
        assert row is not None and row[0] == 2
    finally:
        await store.close()


async def test_deferred_work_that_fails_rolls_back_the_whole_transaction(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "edged.db")
    try:

        def refuse(s: Statements) -> None:
            raise ValueError("amount does not match the trade")

        with pytest.raises(ValueError, match="amount does not match"):
            async with store.transaction() as tx:
                await tx.execute("INSERT INTO sequences (name, value) VALUES ('run', 1)")
                claimed = tx.defer(lambda s: s.next_sequence("inbox"))
                tx.defer(refuse)
        assert claimed.cancelled(), "the result of rolled-back work is not handed out"
        assert await store.fetchall("SELECT name FROM sequences") == []
        async with store.transaction() as tx:  # and the writer is free for the next one
            await tx.execute("INSERT INTO sequences (name, value) VALUES ('next', 1)")
        assert [r[0] for r in await store.fetchall("SELECT name FROM sequences")] == ["next"]
    finally:
        await store.close()


async def test_deferred_work_rides_on_the_next_run_before_its_own_work(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "edged.db")
    try:
        async with store.transaction() as tx:
            claimed = tx.defer(lambda s: s.next_sequence("inbox"))
            seen = await tx.fetchone("SELECT value FROM sequences WHERE name = 'inbox'")
            assert claimed.done() and claimed.result() == 1
        assert seen is not None and seen[0] == 1
    finally:
        await store.close()


async def test_after_callbacks_of_work_riding_on_the_commit_see_it_committed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "edged.db"
    store = await open_store(path)
    seen_by_another_connection: list[int] = []

    def look() -> None:
        other = sqlite3.connect(path)
        try:
            row = other.execute("SELECT value FROM sequences WHERE name = 'sale'").fetchone()
            seen_by_another_connection.append(row[0] if row else 0)
        finally:
            other.close()

    def sell(s: Statements) -> None:
        s.next_sequence("sale")
        s.after.append(look)

    try:
        async with store.transaction() as tx:
            tx.defer(sell)
        assert seen_by_another_connection == [1]
    finally:
        await store.close()


async def test_print_jobs_survive_the_migration_that_lets_receipts_be_laid_out_later(
    tmp_path: Path,
) -> None:
    path = tmp_path / "edged.db"
    old = await Store.open(path, SystemClock(), bundled_migrations()[:4])
    async with old.transaction() as tx:
        for n in (1, 2):
            await tx.execute(
                "INSERT INTO print_jobs (sale_id, kind, document, created_at) "
                "VALUES (?, 'receipt', '{\"blocks\": []}', ?)",
                (f"s{n}", tx.now),
            )
        await tx.execute("DELETE FROM print_jobs WHERE sale_id = 's2'")  # pruned
    await old.close()

    store = await open_store(path)
    try:
        rows = await store.fetchall("SELECT id, sale_id, document, state FROM print_jobs")
        assert [tuple(r) for r in rows] == [(1, "s1", '{"blocks": []}', "queued")]
        async with store.transaction() as tx:
            new_id = await tx.insert(
                "INSERT INTO print_jobs (sale_id, kind, document, created_at) "
                "VALUES ('s3', 'receipt', NULL, ?)",
                (tx.now,),
            )
        assert new_id == 3, "job ids are never reused"
        with pytest.raises(sqlite3.IntegrityError):
            async with store.transaction() as tx:
                await tx.execute(
                    "INSERT INTO print_jobs (sale_id, kind, document, created_at) "
                    "VALUES (NULL, 'note', NULL, ?)",
                    (tx.now,),
                )
    finally:
        await store.close()


async def writer_sync_level(store: Store) -> int:
    async with store.transaction() as tx:
        row = await tx.fetchone("PRAGMA synchronous")
    assert row is not None
    return int(row[0])


async def test_bookkeeping_commits_without_fsync_and_facts_stay_fully_synced(
    tmp_path: Path,
) -> None:
    store = await open_store(tmp_path / "edged.db")
    try:
        async with store.transaction(fsync=False) as tx:
            await tx.execute("INSERT INTO sequences (name, value) VALUES ('mark', 1)")
            inside = await tx.fetchone("PRAGMA synchronous")
        assert inside is not None and inside[0] == 1, "NORMAL: no fsync at this commit"
        assert await store.fetchone("SELECT value FROM sequences WHERE name = 'mark'") is not None
        assert await writer_sync_level(store) == 2, "the next fact commits with FULL again"

        with pytest.raises(RuntimeError, match="boom"):
            async with store.transaction(fsync=False) as tx:
                await tx.execute("INSERT INTO sequences (name, value) VALUES ('lost', 1)")
                raise RuntimeError("boom")
        assert await store.fetchone("SELECT 1 FROM sequences WHERE name = 'lost'") is None
        assert await writer_sync_level(store) == 2, "FULL again after a rollback too"

        outbox = Outbox(store, TOPICS)
        async with store.transaction() as tx:
            envelope = await outbox.add(tx, Uplink.TXN, "txn.completed", {"n": 1})
        [row] = await outbox.pending(10)
        assert row.msg_id == envelope.id
        await outbox.mark_delivered([row.seq])
        assert await outbox.pending(10) == []
        assert await writer_sync_level(store) == 2, "marking delivered leaves FULL behind"
    finally:
        await store.close()


async def test_a_bulk_read_does_not_hold_up_the_shoppers_small_reads(tmp_path: Path) -> None:
    """The outbox backlog is read on a connection of its own (aiosqlite runs one
    connection's queries one after another)."""
    import asyncio
    import time

    store = await open_store(tmp_path / "edged.db")
    try:
        slow = asyncio.ensure_future(
            store.fetchall_bulk(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
                " SELECT COUNT(*) FROM n",
                (1_000_000,),
            )
        )
        await asyncio.sleep(0.05)  # the bulk query is running in its thread
        started = time.monotonic()
        row = await store.fetchone("SELECT COUNT(*) FROM sequences")
        small_s = time.monotonic() - started
        assert row is not None
        assert not slow.done(), "the small read finished while the bulk read still ran"
        [[count]] = await slow
        assert count == 1_000_000
        assert small_s < 0.5
    finally:
        await store.close()


async def test_the_wal_is_copied_back_by_the_store_s_checkpointer_not_inside_a_commit(
    tmp_path: Path,
) -> None:
    store = await open_store(tmp_path / "edged.db")
    try:
        async with store.transaction() as tx:
            automatic = await tx.fetchone("PRAGMA wal_autocheckpoint")
        assert automatic is not None and automatic[0] == 0, "no commit runs a checkpoint"
        assert store.checkpointer.checkpoints == 0

        for n in range(EVERY_COMMITS - 2):  # with the one above: one short of a round
            async with store.transaction() as tx:
                await tx.execute("INSERT INTO sequences (name, value) VALUES (?, 1)", (f"s{n}",))
        assert store.checkpointer.checkpoints == 0
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO sequences (name, value) VALUES ('last', 1)")
        await until(lambda: store.checkpointer.checkpoints == 1, within_s=5)
        assert await store.fetchone("SELECT value FROM sequences WHERE name = 'last'") is not None
    finally:
        await store.close()


async def test_releases_survive_the_migration_that_lets_a_request_release_a_door(
    tmp_path: Path,
) -> None:
    path = tmp_path / "edged.db"
    old = await Store.open(path, SystemClock(), bundled_migrations()[:11])
    async with old.transaction() as tx:
        await tx.execute(
            "INSERT INTO sales (id, seq, state, total_fen, created_at, clock_synced, updated_at) "
            "VALUES ('sale-1', 1, 'paid', 500, ?, 1, ?)",
            (tx.now, tx.now),
        )
        for n, owner in enumerate(("sale_id", "order_id", "order_id")):
            await tx.execute(
                f"INSERT INTO releases ({owner}, slot, state, reason, paid_at, created_at, "
                "updated_at, unlocked_at, ended_at) VALUES (?, 2, 'closed', 'r', ?, ?, ?, ?, ?)",
                ("sale-1" if owner == "sale_id" else f"order-{n}", *[tx.now] * 5),
            )
        await tx.execute("DELETE FROM releases WHERE id = 3")  # pruned
    columns = (
        "id, sale_id, order_id, slot, state, reason, paid_at, created_at, updated_at, "
        "unlocked_at, opened_at, ended_at"
    )
    before = [tuple(r) for r in await old.fetchall(f"SELECT {columns} FROM releases ORDER BY id")]
    await old.close()

    store = await open_store(path)
    try:
        rows = await store.fetchall(f"SELECT {columns} FROM releases ORDER BY id")
        assert [tuple(r) for r in rows] == before and len(before) == 2
        owners = await store.fetchall("SELECT request_id FROM releases ORDER BY id")
        assert [r[0] for r in owners] == [None, None]
        indexes = await store.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'releases' "
            "ORDER BY name"
        )
        assert [r[0] for r in indexes] == [
            "releases_active",
            "releases_one_per_order",
            "releases_one_per_request",
            "releases_one_per_sale",
        ]
        insert = (
            "INSERT INTO releases (sale_id, order_id, request_id, slot, state, paid_at, "
            "created_at, updated_at) VALUES (?, ?, ?, 1, 'pending', ?, ?, ?)"
        )
        async with store.transaction() as tx:
            new_id = await tx.insert(insert, (None, None, "req-0001", *[tx.now] * 3))
        assert new_id == 4, "release ids are never reused"
        for owners in [
            (None, None, None),
            ("sale-1", None, "req-0002"),
            (None, "order-x", "req-0003"),
            (None, None, "req-0001"),  # one release per request
        ]:
            with pytest.raises(sqlite3.IntegrityError):
                async with store.transaction() as tx:
                    await tx.execute(insert, (*owners, *[tx.now] * 3))
        fk = await store.fetchall("PRAGMA foreign_key_check")
        assert list(fk) == []
    finally:
        await store.close()
