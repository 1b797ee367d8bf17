"""The outbox pump: SQLite rows out to the broker at QoS 1, marked delivered on PUBACK.

Rules it keeps:

- Order: rows are read along the pending index (priority, seq) with a keyset cursor and
  published in that order on one connection, so each topic (one priority per topic) goes
  out in seq order. After a reconnect it starts again from the oldest undelivered row.
- Window: a row occupies a window slot from PUBLISH until its delivered mark is committed
  (not merely until PUBACK), so a crash of the process at any moment re-sends at most
  `window` rows (marks commit without their own fsync: a power cut may also re-send the
  marks since the last fsynced commit or checkpoint, never lose a row), and
  paho never holds more than `window` messages (nor more than the broker's MQTT 5 Receive
  Maximum). Nothing waits in memory beyond one page
  of rows read ahead.
- Batching: PUBACKs are collected and marked in one transaction per batch of up to
  `MARK_BATCH` (group commit: while one batch commits the next gathers), so a fast drain
  costs one commit per batch.
- The shopper first: marks are bookkeeping, which waits while a fact waits for the writer,
  and the pump publishes nothing while a fact is being written, so a scan or a sale commit
  takes about as long as on a quiet kiosk (`edged bench drain --while-selling`).
- Money first: when a row of higher priority (lower number) than the cursor is written,
  the cursor restarts from the top, so a sale is not queued behind a telemetry backlog.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from edged.link.client import ConnectionLost, MqttConnection
from edged.runtime.backoff import Backoff
from edged.store.database import StoreUnwritable
from edged.store.outbox import Outbox, OutboxRow

log = logging.getLogger("edged.link.pump")

IDLE_POLL_S = 2.0
"""Backstop poll when idle: rows written without `Outbox.add` are found within this."""
NO_CURSOR = (-1, 0)
PUBLISH_BURST = 32
"""Publishes handed to paho per turn of the event loop."""
MARK_BATCH = 64
"""Delivered marks per transaction: a shopper's commit waits for at most one such batch
(well under a millisecond) before it has the writer (see store/writer_turns)."""


@dataclass
class PumpStats:
    published: int = 0
    delivered: int = 0
    broker_rejected: int = 0
    unpublishable: int = 0


class OutboxPump:
    def __init__(self, outbox: Outbox, window: int, page_size: int | None = None) -> None:
        self._outbox = outbox
        self.window = window
        self._page = page_size or max(256, 2 * window)
        self._inflight: dict[int, int] = {}
        """mid -> seq for rows handed to the current connection and not yet PUBACKed."""
        self._acked: list[int] = []
        self._marking: set[int] = set()
        self._acked_event = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._wake = asyncio.Event()
        self._lowest_written: int | None = None
        self._resend_floor = 0
        self.stats = PumpStats()
        outbox.on_written(self._written)

    @property
    def in_flight(self) -> int:
        """Rows published whose delivered mark is not yet committed: what a crash re-sends."""
        return len(self._inflight) + len(self._acked) + len(self._marking)

    # -- callbacks from the outbox and the connection ------------------------------------

    def _written(self, priority: int) -> None:
        if self._lowest_written is None or priority < self._lowest_written:
            self._lowest_written = priority
        self._wake.set()

    def delivered(self, mid: int, failure: str | None) -> None:
        seq = self._inflight.pop(mid, None)
        if seq is None:
            return  # a birth or other message that is not an outbox row
        if failure is not None:
            # The broker took the message and will never accept it (e.g. not authorised);
            # re-sending cannot help, and holding it would block every topic behind it.
            self.stats.broker_rejected += 1
            log.error("broker rejected an outbox message", extra={"seq": seq, "reason": failure})
        self.stats.delivered += 1
        self._acked.append(seq)
        self._acked_event.set()

    # -- the two loops -----------------------------------------------------------------

    async def run_marker(self) -> None:
        """Commit delivered marks for as long as the link lives (across reconnects); a
        disk too full to take them keeps them (and their window slots) and tries again."""
        backoff = Backoff(0.2, 5.0)
        while True:
            await self._acked_event.wait()
            self._acked_event.clear()
            try:
                await self.flush()
            except StoreUnwritable as exc:
                delay = backoff.next_delay()
                log.warning(
                    "delivered marks wait for the store",
                    extra={"reason": exc.reason, "retry_in_s": round(delay, 2)},
                )
                self._acked_event.set()
                await asyncio.sleep(delay)
                continue
            backoff.reset()

    async def flush(self) -> None:
        """Commit every mark collected so far, `MARK_BATCH` rows a transaction."""
        while self._acked:
            await self._flush_batch()

    async def _flush_batch(self) -> None:
        batch, self._acked = self._acked[:MARK_BATCH], self._acked[MARK_BATCH:]
        self._marking.update(batch)
        try:
            await self._outbox.mark_delivered(batch)
        except StoreUnwritable:
            self._acked = batch + self._acked  # still delivered, still to be marked
            raise
        finally:
            self._marking.difference_update(batch)
            self._slot_freed.set()

    async def serve(self, conn: MqttConnection) -> None:
        """Publish until the connection dies (ConnectionLost) or the task is cancelled."""
        self._inflight.clear()  # the old connection's unacked rows are re-read below
        window = min(self.window, conn.receive_maximum or self.window)
        cursor = NO_CURSOR
        buffer: deque[OutboxRow] = deque()
        ahead: asyncio.Task[list[OutboxRow]] | None = None
        more = True  # the last page was full, so the backlog may go on
        try:
            while True:
                if self._lowest_written is not None and self._lowest_written < cursor[0]:
                    cursor, more = NO_CURSOR, True
                    buffer.clear()
                    if ahead is not None:
                        ahead.cancel()
                        ahead = None
                self._lowest_written = None
                if not buffer:
                    self._wake.clear()
                    if ahead is not None:
                        rows, ahead = await ahead, None
                    else:
                        rows = await self._outbox.pending(self._page, after=cursor)
                    if not rows:
                        more = False
                        if not await self._idle():
                            # A row's wake can come from a hop before its COMMIT, read too
                            # early and spent while the cursor moved past its priority: the
                            # backstop poll reads from the start, so no row waits for ever.
                            cursor = NO_CURSOR
                        more = True
                        continue
                    more = len(rows) == self._page
                    cursor = (rows[-1].priority, rows[-1].seq)
                    busy = set(self._inflight.values()) | self._marking | set(self._acked)
                    buffer.extend(row for row in rows if row.seq not in busy)
                burst = 0
                while buffer and self.in_flight < window:
                    await self._outbox.facts_written()  # the shopper's commit first
                    if conn.closed.done():
                        raise ConnectionLost(conn.closed.result())
                    self._publish(conn, buffer.popleft())
                    burst += 1
                    if burst % PUBLISH_BURST == 0:
                        # Let the loop write these and run a shopper's scan before going on.
                        await asyncio.sleep(0)
                        if conn.closed.done():
                            raise ConnectionLost(conn.closed.result())
                if more and ahead is None and len(buffer) < self._page // 2:
                    # Read the next page while this one is being published and acknowledged.
                    ahead = asyncio.ensure_future(self._outbox.pending(self._page, after=cursor))
                if self.in_flight >= window:
                    self._slot_freed.clear()
                    await self._wait_slot(conn)
        finally:
            if ahead is not None:
                ahead.cancel()

    def _publish(self, conn: MqttConnection, row: OutboxRow) -> None:
        if not self._outbox.hand_out(row.seq):
            return  # withdrawn after this page was read: it never leaves the kiosk
        try:
            mid = conn.publish(row.topic, row.payload, row.qos, row.retain, row.correlation)
        except ValueError as exc:
            # paho refuses the topic itself (wildcards, too long): it can never be sent.
            self.stats.unpublishable += 1
            log.error("outbox row cannot be published", extra={"seq": row.seq, "reason": str(exc)})
            self._acked.append(row.seq)
            self._acked_event.set()
            return
        self._inflight[mid] = row.seq
        self.stats.published += 1

    async def _wait_slot(self, conn: MqttConnection) -> None:
        slot: asyncio.Future[Any] = asyncio.ensure_future(self._slot_freed.wait())
        closed: asyncio.Future[Any] = conn.closed
        try:
            await asyncio.wait({slot, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            slot.cancel()
        if conn.closed.done():
            raise ConnectionLost(conn.closed.result())

    async def _idle(self) -> bool:
        """Nothing pending: sleep until a row is written (then let it commit) or a poll.

        True when a write woke it, False when the backstop poll did."""
        try:
            await asyncio.wait_for(self._wake.wait(), IDLE_POLL_S)
        except TimeoutError:
            return False
        await self._outbox.settled()
        return True
