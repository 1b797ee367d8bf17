"""The SQLite store: WAL, synchronous=FULL, numbered migrations, one writer, one reader.

Writes go through `transaction()`, serialised by a lock on a single writer connection. Reads
go through a separate connection that only ever sees committed data, so nothing outside a
transaction (a pump, a status page) can observe a fact before it is durable.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from edged.contract.envelope import rfc3339
from edged.runtime.clock import Clock
from edged.store.checkpointer import Checkpointer
from edged.store.writer_turns import WriterTurns

Params = Sequence[Any] | dict[str, Any]
T = TypeVar("T")
MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class StoreError(RuntimeError):
    """The store cannot be used; the message tells an operator what to do."""


SQLITE_FULL = 13
SQLITE_IOERR = 10


class StoreUnwritable(sqlite3.OperationalError):
    """A write transaction failed because the disk is full or failing, not because of what
    it wrote: an expected outcome at every write site. Nothing was written; the same work
    may succeed once space returns. `reason` is short and safe to show and log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def unwritable_reason(exc: BaseException) -> str | None:
    """`disk full` or `disk I/O error` when `exc` is SQLite failing to write, else None."""
    if isinstance(exc, StoreUnwritable):
        return exc.reason
    if not isinstance(exc, sqlite3.OperationalError):
        return None
    primary = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    if primary == SQLITE_FULL or "disk is full" in str(exc):
        return "disk full"
    if primary == SQLITE_IOERR or "disk I/O error" in str(exc):
        return "disk I/O error"
    return None


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def bundled_migrations() -> list[Migration]:
    folder = resources.files("edged.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise StoreError("migrations must be numbered 0001, 0002, ... without gaps")
    return found


class Statements:
    """Synchronous access to an open write transaction, used inside the writer thread.

    Each await on the store is a hop to that thread and back (about 0.2 ms here, more on a
    Pi), so work that needs several statements runs them all in one hop through
    `Transaction.run`. Callbacks in `after` run on the event loop once the hop returns.
    """

    def __init__(self, conn: sqlite3.Connection, now: str) -> None:
        self._conn = conn
        self.now = now
        self.after: list[Callable[[], None]] = []

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        before = self._conn.total_changes
        self._conn.execute(sql, params).close()
        return self._conn.total_changes - before

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self._conn.executemany(sql, rows).close()

    def insert(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT; returns the new rowid."""
        cursor = self._conn.execute(sql, params)
        rowid = cursor.lastrowid
        cursor.close()
        if rowid is None:
            raise StoreError("insert produced no row id")
        return rowid

    def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        cursor = self._conn.execute(sql, params)
        try:
            row: sqlite3.Row | None = cursor.fetchone()
            return row
        finally:
            cursor.close()

    def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        cursor = self._conn.execute(sql, params)
        try:
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def next_sequence(self, name: str) -> int:
        """A persisted counter: ordering never depends on the wall clock."""
        row = self.fetchone(
            "INSERT INTO sequences (name, value) VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
            (name,),
        )
        assert row is not None
        return int(row[0])


class Transaction:
    """An open write transaction; everything done through it commits or rolls back together.

    Each `run` (and each async helper) is one hop to the writer thread. Work whose result is
    needed only after the commit goes through `defer` instead and rides on the next hop, the
    COMMIT's own if nothing follows, so a whole transaction can cost a single hop.
    """

    def __init__(self, conn: aiosqlite.Connection, now: str, *, fsync: bool = True) -> None:
        self._conn = conn
        self._fsync = fsync
        self.now = now
        """The wall time of this transaction as RFC 3339, one value for every row it writes."""
        self.begun = False
        self._deferred: list[tuple[Callable[[Statements], Any], asyncio.Future[Any]]] = []

    def defer(self, work: Callable[[Statements], T]) -> asyncio.Future[T]:
        """Queue `work` for the next hop to the writer thread: the next `run`, or the COMMIT.

        The future holds its result once that hop returned; it is cancelled if the hop
        failed. An exception from `work` rolls the transaction back like any other. Callbacks
        that `work` adds to `Statements.after` run after its hop, so after the commit when it
        rode on the COMMIT.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._deferred.append((work, future))
        return future

    async def run(self, work: Callable[[Statements], T]) -> T:
        """Do `work` in the writer thread, in this transaction, in one hop (after any
        deferred work). The first hop also opens the transaction (BEGIN IMMEDIATE)."""
        return await self._hop(work, commit=False)

    async def _commit(self) -> None:
        """Run what is still deferred and COMMIT (fsynced), in one hop; no hop if nothing
        was ever written."""
        if self.begun or self._deferred:
            await self._hop(_nothing, commit=True)

    async def _hop(self, work: Callable[[Statements], T], *, commit: bool) -> T:
        raw = _raw(self._conn)
        statements = Statements(raw, self.now)
        deferred, self._deferred = self._deferred, []

        def in_writer_thread() -> tuple[list[Any], T]:
            if not self.begun:
                if not self._fsync:
                    statements.execute("PRAGMA synchronous = NORMAL")
                statements.execute("BEGIN IMMEDIATE")
                self.begun = True
            done = [queued(statements) for queued, _ in deferred]
            result = work(statements)
            if commit:
                try:
                    statements.execute("COMMIT")
                finally:
                    if not self._fsync:
                        _durable_again(raw)
            return done, result

        try:
            done, result = await _in_writer_thread(self._conn, in_writer_thread)
        except BaseException:
            for _, future in deferred:
                future.cancel()
            raise
        for (_, future), value in zip(deferred, done, strict=True):
            future.set_result(value)
        for callback in statements.after:
            callback()
        return result

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await self.run(lambda s: s.execute(sql, params))

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await self.run(lambda s: s.executemany(sql, rows))

    async def insert(self, sql: str, params: Params = ()) -> int:
        return await self.run(lambda s: s.insert(sql, params))

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        return await self.run(lambda s: s.fetchone(sql, params))

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return await self.run(lambda s: s.fetchall(sql, params))

    async def next_sequence(self, name: str) -> int:
        return await self.run(lambda s: s.next_sequence(name))


def _nothing(_: Statements) -> None:
    return None


def _durable_again(conn: sqlite3.Connection) -> None:
    """Back to synchronous=FULL once no transaction is open (the pragma is refused inside)."""
    if conn.in_transaction:
        conn.rollback()
    conn.execute("PRAGMA synchronous = FULL")


def _raw(conn: aiosqlite.Connection) -> sqlite3.Connection:
    """The sqlite3 connection aiosqlite drives; touched only from its own thread."""
    raw: sqlite3.Connection = conn._conn
    return raw


async def _in_writer_thread(conn: aiosqlite.Connection, work: Callable[[], T]) -> T:
    """aiosqlite's own hop (`_execute`), which runs `work` on the connection's thread.

    It is private API, so the version is bounded in pyproject.toml and
    tests/foundation/test_store.py covers it.
    """
    result: T = await conn._execute(work)  # type: ignore[no-untyped-call]
    return result


class Store:
    def __init__(
        self,
        path: Path,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        clock: Clock,
    ) -> None:
        self.path = path
        self.clock = clock
        self._writer = writer
        self._reader = reader
        self._bulk: aiosqlite.Connection | None = None
        self._bulk_opening = asyncio.Lock()
        self._turns = WriterTurns()
        self.checkpointer = Checkpointer(path)
        self.unwritable = ""
        """Why the last write transaction failed for lack of disk ("" once one commits)."""
        self._write_listeners: list[Callable[[str], None]] = []

    def on_write_trouble(self, listener: Callable[[str], None]) -> None:
        """`listener(reason)` runs on the loop when a write fails for lack of disk, and
        `listener("")` when a write commits again afterwards."""
        self._write_listeners.append(listener)

    def _note_writable(self, reason: str) -> None:
        if reason == self.unwritable:
            return
        self.unwritable = reason
        for listener in self._write_listeners:
            listener(reason)

    @classmethod
    async def open(
        cls, path: Path, clock: Clock, migrations: list[Migration] | None = None
    ) -> Store:
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await aiosqlite.connect(path, isolation_level=None)
        try:
            writer.row_factory = sqlite3.Row
            try:
                await _configure(writer)
            except sqlite3.DatabaseError as exc:
                if reason := unwritable_reason(exc):
                    raise StoreError(
                        f"{path}: the disk takes no writes ({reason}, "
                        f"{shutil.disk_usage(path.parent).free} bytes free); free some space"
                    ) from None
                raise StoreError(f"{path}: not a usable SQLite database: {exc}") from None
            await _check_integrity(writer, path)
            await _migrate(writer, migrations if migrations is not None else bundled_migrations())
            reader = await _open_reader(path)
        except BaseException:
            await writer.close()
            raise
        return cls(path, writer, reader, clock)

    async def facts_written(self) -> None:
        """Return once no fact transaction is waiting for the writer or writing (see
        writer_turns): at once, without a turn of the loop, when none is."""
        if not self._turns.facts_quiet.is_set():
            await self._turns.facts_quiet.wait()

    async def close(self) -> None:
        async with self._turns.turn():
            await self.checkpointer.close()
            if self._bulk is not None:
                await self._bulk.close()
                self._bulk = None
            await self._reader.close()
            await self._writer.close()

    @asynccontextmanager
    async def transaction(self, *, fsync: bool = True) -> AsyncIterator[Transaction]:
        """BEGIN IMMEDIATE ... COMMIT (fsynced); any exception rolls everything back.

        One writer at a time, in arrival order. A transaction that wrote nothing costs no
        SQLite round trip, so waiting for the writers before it is cheap.

        `fsync=False` is for bookkeeping whose loss on a power cut is harmless (the outbox's
        delivered marks: a lost mark is a re-send the cloud drops by id): it commits with
        synchronous=NORMAL, so it survives a crash of the process but reaches the disk with
        the next fsynced commit or checkpoint, and never delays a fact's commit by its own
        fsync. The connection is FULL again before the lock is released, whatever happened.
        Such bookkeeping also waits while a fact is waiting for the writer (writer_turns).
        """
        async with self._turns.turn(fact=fsync):
            tx = Transaction(self._writer, rfc3339(self.clock.now()), fsync=fsync)
            try:
                yield tx
                await tx._commit()
            except BaseException as exc:
                # A cancelled hop still runs in the writer thread (maybe BEGIN with it), so
                # the rollback is queued behind it, shielded, whatever `begun` says yet.
                await asyncio.shield(_in_writer_thread(self._writer, self._rollback_if_open))
                reason = unwritable_reason(exc)
                if reason is None:
                    raise
                self._note_writable(reason)
                if isinstance(exc, StoreUnwritable):
                    raise
                raise StoreUnwritable(reason) from exc
            if tx.begun:
                self._note_writable("")
                self.checkpointer.committed()

    def _rollback_if_open(self) -> None:
        raw = _raw(self._writer)
        if raw.in_transaction:
            raw.rollback()
        raw.execute("PRAGMA synchronous = FULL")

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        rows = await self._reader.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return list(await self._reader.execute_fetchall(sql, params))

    async def fetchall_bulk(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """A large read (a page of the outbox backlog) on a reader connection of its own.

        aiosqlite runs one connection's queries one after another in its thread, so on the
        shared reader a shopper's small lookup (the open sale, a print job) would wait
        behind every page a drain reads: 12 ms p50 measured during a drain. Opened on first
        use, so a store that never drains does not pay for the connection.
        """
        if self._bulk is None:
            async with self._bulk_opening:
                if self._bulk is None:
                    self._bulk = await _open_reader(self.path)
        return list(await self._bulk.execute_fetchall(sql, params))

    async def schema_version(self) -> int:
        row = await self.fetchone("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def integrity_ok(self) -> bool:
        row = await self.fetchone("PRAGMA integrity_check")
        return row is not None and row[0] == "ok"

    async def used_bytes(self) -> int:
        """Pages holding data: deleted rows free pages for reuse without shrinking the file,
        so this, not the file size, says how close the store is to its limit."""
        row = await self.fetchone(
            "SELECT page_count * page_size, freelist_count * page_size "
            "FROM pragma_page_count(), pragma_page_size(), pragma_freelist_count()"
        )
        return int(row[0]) - int(row[1]) if row is not None else self.size_bytes()

    def size_bytes(self) -> int:
        """Database plus WAL on disk: what the size limit is measured against."""
        total = 0
        for suffix in ("", "-wal"):
            with suppress(FileNotFoundError):
                total += Path(f"{self.path}{suffix}").stat().st_size
        return total


async def _configure(conn: aiosqlite.Connection) -> None:
    await conn.execute("PRAGMA busy_timeout = 5000")
    async with conn.execute("PRAGMA journal_mode = WAL") as cursor:
        row = await cursor.fetchone()
    if row is None or str(row[0]).lower() != "wal":
        raise StoreError("the database could not be switched to WAL mode")
    await conn.execute("PRAGMA synchronous = FULL")
    await conn.execute("PRAGMA foreign_keys = ON")
    await conn.execute("PRAGMA wal_autocheckpoint = 0")  # see checkpointer


async def _open_reader(path: Path) -> aiosqlite.Connection:
    """The connection that only ever sees committed data."""
    reader = await aiosqlite.connect(path, isolation_level=None)
    try:
        reader.row_factory = sqlite3.Row
        await reader.execute("PRAGMA query_only = ON")
        await reader.execute("PRAGMA busy_timeout = 5000")
    except BaseException:
        await reader.close()
        raise
    return reader


async def _check_integrity(conn: aiosqlite.Connection, path: Path) -> None:
    try:
        async with conn.execute("PRAGMA quick_check") as cursor:
            rows = await cursor.fetchall()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a usable SQLite database: {exc}") from None
    problems = [str(row[0]) for row in rows if row[0] != "ok"]
    if problems:
        raise StoreError(f"{path}: integrity check failed: {'; '.join(problems[:5])}")


async def _migrate(conn: aiosqlite.Connection, migrations: list[Migration]) -> None:
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    current = int(row[0]) if row else 0
    latest = migrations[-1].version if migrations else 0
    if current > latest:
        raise StoreError(
            f"database schema version {current} is newer than this edged understands "
            f"({latest}); run the edged version that wrote it, or restore a backup"
        )
    for migration in migrations:
        if migration.version <= current:
            continue
        stamp = f"PRAGMA user_version = {migration.version};"
        script = "\n".join(["BEGIN IMMEDIATE;", migration.sql, stamp, "COMMIT;"])
        try:
            await conn.executescript(script)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise StoreError(f"migration {migration.name} failed: {exc}") from None
