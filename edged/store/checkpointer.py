"""Copies the WAL back into the database on a connection of its own, off the commit path.

SQLite's automatic checkpoint runs inside whichever commit takes the WAL past 1000 pages:
while a backlog drains, its delivered marks fill the WAL several times a second, and the
shopper's sale commit that happened to cross the line paid for copying 4 MB and an fsync
of the database file (commit p99 11.8 ms against 5.5 ms without, `edged bench drain
--while-selling`). So the writer's automatic checkpoint is off and this one runs a PASSIVE
checkpoint in its own thread every `EVERY_COMMITS` commits: WAL mode lets it copy while the
writer goes on writing, and it never waits for a lock. Durability does not change: a
commit is durable once its WAL frames are synced, whenever they are copied back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from pathlib import Path

import aiosqlite

log = logging.getLogger("edged.store")

EVERY_COMMITS = 64
"""A scan writes a few pages and a batch of delivered marks a few dozen: 64 commits keep
the WAL to a few megabytes, as SQLite's own 1000-page threshold would."""


class Checkpointer:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: aiosqlite.Connection | None = None
        self._running: asyncio.Task[None] | None = None
        self._commits = 0
        self.checkpoints = 0
        """Checkpoints completed (a figure for tests and status)."""

    def committed(self) -> None:
        """Called on the loop after each commit; starts a checkpoint every EVERY_COMMITS."""
        self._commits += 1
        if self._commits < EVERY_COMMITS or (self._running and not self._running.done()):
            return
        self._commits = 0
        self._running = asyncio.create_task(self._checkpoint(), name="store:checkpoint")

    async def _checkpoint(self) -> None:
        try:
            if self._conn is None:
                self._conn = await aiosqlite.connect(self._path, isolation_level=None)
            await self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self.checkpoints += 1
        except sqlite3.Error as exc:
            # A full disk, say: the WAL keeps the data and the next round tries again.
            log.warning("WAL checkpoint failed", extra={"reason": str(exc)})

    async def close(self) -> None:
        if self._running is not None:
            with contextlib.suppress(Exception):
                await self._running
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
