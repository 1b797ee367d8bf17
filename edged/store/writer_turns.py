"""Turns at the store's one writer: facts before bookkeeping, each class in arrival order.

SQLite takes one writer at a time. While a backlog drains, the outbox's delivered marks
want the writer hundreds of times a second; in a plain FIFO a shopper's scan or sale
commit queued behind several of them (p50 1 ms, p99 6 ms measured in `edged bench drain
--while-selling`). Bookkeeping (a delivered mark: losing it costs a re-send, nothing else)
therefore waits while any fact is waiting; a fact never waits for bookkeeping that has
not started. Bookkeeping still gets its turn whenever no fact is queued, so marks are not
starved by a kiosk that sells: a shopper leaves the writer idle most of the time.

`facts_quiet` is set while no fact is waiting or writing: the outbox pump publishes only
then, so a shopper's scan does not queue on the event loop behind a burst of publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class WriterTurns:
    def __init__(self) -> None:
        self._busy = False
        self._facts: deque[asyncio.Future[None]] = deque()
        self._bookkeeping: deque[asyncio.Future[None]] = deque()
        self._facts_open = 0
        self.facts_quiet = asyncio.Event()
        self.facts_quiet.set()

    @asynccontextmanager
    async def turn(self, *, fact: bool = True) -> AsyncIterator[None]:
        if fact:
            self._facts_open += 1
            self.facts_quiet.clear()
        try:
            await self._acquire(fact)
            try:
                yield
            finally:
                self._release()
        finally:
            if fact:
                self._facts_open -= 1
                if not self._facts_open:
                    self.facts_quiet.set()

    @property
    def waiting(self) -> int:
        return len(self._facts) + len(self._bookkeeping)

    async def _acquire(self, fact: bool) -> None:
        if not self._busy and not self._facts and (fact or not self._bookkeeping):
            self._busy = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._facts if fact else self._bookkeeping
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # granted just as it was cancelled: pass the turn on
            else:
                with contextlib.suppress(ValueError):  # _release may have dropped it
                    queue.remove(waiter)
            raise

    def _release(self) -> None:
        for queue in (self._facts, self._bookkeeping):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the turn passes on; still busy
                    return
        self._busy = False
