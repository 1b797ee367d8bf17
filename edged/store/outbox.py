"""The transactional outbox: a fact's message is written in the same transaction as the fact.

The envelope (id, seq, ts) is fixed when the row is written, so a re-send after a crash is
byte-identical and the cloud drops it by id.

Withdrawal: a row this process wrote and never handed to a broker connection (the pump
calls `hand_out` first) can be taken back with `withdraw_now` inside a transaction, so a
request the kiosk no longer wants (a payment past its deadline while offline) never leaves.
A row written before a restart, or handed to any connection, may have left: never withdrawn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

from edged.contract.envelope import Envelope, make_envelope, parse_rfc3339, rfc3339
from edged.contract.topics import UPLINK_RULES, DeviceTopics, Priority, Uplink
from edged.contract.txn_summary import summarize
from edged.store.database import Statements, Store, Transaction

UPLINK_SEQUENCE = "uplink"
TXN_SEQUENCE = "txn"
TXN_KEEP = timedelta(days=40)
"""Delivered `evt/txn` rows stay this long past the usual retention: reconciliation resends
them byte for byte when the backend is missing one."""
OUTBOX_COLUMNS = "seq, msg_id, topic, priority, qos, retain, payload, created_at, correlation"

MARK_CHUNK = 500
"""Rows per UPDATE when marking delivered: below SQLite's bound-parameter limit."""

WrittenListener = Callable[[int], None]
"""Told the priority of each row added, so a pump can wake (the row commits a moment later)."""


@dataclass(frozen=True)
class ResponseRoute:
    """Where a reply to an MQTT 5 request goes: its response topic and correlation data."""

    topic: str
    correlation: bytes | None = None


class OutboxRow(NamedTuple):
    """One undelivered row as the pump publishes it (a tuple: a drain builds 100k of them,
    and a frozen dataclass costs twice as much to make)."""

    seq: int
    msg_id: str
    topic: str
    priority: int
    qos: int
    retain: bool
    payload: bytes
    created_at: str
    correlation: bytes | None = None


@dataclass(frozen=True)
class OutboxStats:
    depth: int
    oldest_created_at: str | None
    delivered: int

    def oldest_age_s(self, now: datetime) -> float:
        if self.oldest_created_at is None:
            return 0.0
        return max(0.0, (now - parse_rfc3339(self.oldest_created_at)).total_seconds())


class Outbox:
    def __init__(self, store: Store, topics: DeviceTopics) -> None:
        self._store = store
        self._topics = topics
        self._listeners: list[WrittenListener] = []
        self._guard = threading.Lock()
        """`hand_out` runs on the loop, `withdraw_now` in the writer thread."""
        self._first_row: int | None = None
        self._handed: set[int] = set()
        self._withdrawn: set[int] = set()

    def hand_out(self, seq: int) -> bool:
        """The pump is about to publish row `seq`: False if it was withdrawn (skip it)."""
        with self._guard:
            if seq in self._withdrawn:
                self._withdrawn.discard(seq)
                return False
            self._handed.add(seq)
            return True

    def withdraw_now(self, s: Statements, msg_id: str) -> bool:
        """Delete the undelivered row of `msg_id` if it provably never left the kiosk (see
        the module's doc); True if it was withdrawn. Runs in the writer thread, in `s`'s
        transaction: rolled back, the row stays (and is sent once the cursor meets it)."""
        row = s.fetchone(
            "SELECT seq FROM outbox WHERE msg_id = ? AND delivered_at IS NULL", (msg_id,)
        )
        if row is None:
            return False
        seq = int(row[0])
        with self._guard:
            if self._first_row is None or seq < self._first_row or seq in self._handed:
                return False
            self._withdrawn.add(seq)
        s.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
        return True

    def on_written(self, listener: WrittenListener) -> None:
        self._listeners.append(listener)

    async def settled(self) -> None:
        """Wait until every transaction that was open when this was called has finished.

        Transactions are serialised by the store's FIFO lock, so taking it once (an empty
        transaction writes nothing and syncs nothing) means a row announced by `add` is now
        committed, or rolled back, and the read connection can see it.
        """
        async with self._store.transaction():
            pass

    async def facts_written(self) -> None:
        """The pump waits on this before it publishes: a sale's or a scan's transaction in
        progress goes first (Store.facts_written)."""
        await self._store.facts_written()

    async def add(
        self,
        tx: Transaction,
        kind: Uplink,
        type: str,
        body: dict[str, Any],
        *,
        request_id: str | None = None,
        response: ResponseRoute | None = None,
    ) -> Envelope:
        """Queue one uplink message inside the caller's transaction (one hop)."""
        return await tx.run(
            lambda s: self.write(s, kind, type, body, request_id=request_id, response=response)
        )

    def write(
        self,
        s: Statements,
        kind: Uplink,
        type: str,
        body: dict[str, Any],
        *,
        request_id: str | None = None,
        response: ResponseRoute | None = None,
        sign: Callable[[Envelope], Envelope] | None = None,
    ) -> Envelope:
        """`add` for work already running in the writer thread (`Transaction.run`).

        A reply goes to `rsp/{request_id}`, or to the request's MQTT 5 response topic when
        `response` gives one; it must lie under this device's own `rsp/` root, the only place
        the broker's ACL lets a device publish replies. `sign` signs the envelope (the
        settlement carries the device's own identity signature). Every `evt/txn` message is
        also journaled with its own sequence number (`txn_journal`, never pruned).
        """
        rule = UPLINK_RULES[kind]
        topic = self._topics.uplink(kind, request_id) if response is None else response.topic
        if response is not None and (
            kind is not Uplink.RESPONSE
            or not topic.startswith(f"{self._topics.root}/rsp/")
            or any(c in topic for c in "+#\0")
        ):
            raise ValueError(f"a response route must be a reply under {self._topics.root}/rsp/")
        envelope = make_envelope(
            type=type,
            device=self._topics.device,
            seq=s.next_sequence(UPLINK_SEQUENCE),
            body=body,
            now=self._store.clock.now(),
            clock_synced=self._store.clock.synced(),
        )
        if sign is not None:
            envelope = sign(envelope)
        payload = envelope.to_bytes()
        if kind is Uplink.TXN:
            summary = summarize(type, body)
            s.execute(
                "INSERT INTO txn_journal (txn_seq, msg_id, type, status, at, amount_fen, method, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    s.next_sequence(TXN_SEQUENCE), envelope.id, type, summary.status,
                    summary.at, summary.amount_fen, summary.method, s.now,
                ),
            )  # fmt: skip
        row_seq = s.insert(
            "INSERT INTO outbox "
            "(msg_id, topic, priority, qos, retain, payload, created_at, correlation) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                envelope.id,
                topic,
                int(rule.priority),
                rule.qos,
                int(rule.retain),
                payload,
                s.now,
                response.correlation if response is not None else None,
            ),
        )
        with self._guard:
            if self._first_row is None:
                self._first_row = row_seq
        for listener in self._listeners:
            s.after.append(partial(listener, int(rule.priority)))
        return envelope

    def resend_txns(self, s: Statements, first: int, last: int) -> list[int]:
        """Send journaled `evt/txn` messages `first..last` (txn sequence numbers) again, byte
        for byte: same id, so a receiver that has one drops it. Returns the txn sequence
        numbers that could not be resent (their outbox row was pruned or removed)."""
        rows = s.fetchall(
            "SELECT j.txn_seq, o.msg_id, o.topic, o.priority, o.qos, o.payload FROM txn_journal j "
            "LEFT JOIN outbox o ON o.msg_id = j.msg_id WHERE j.txn_seq BETWEEN ? AND ? "
            "ORDER BY j.txn_seq",
            (first, last),
        )
        kept = [r for r in rows if r["msg_id"] is not None]
        # A fresh row (a new outbox seq), not a reset one: the pump's cursor has passed the
        # old seq and would not come back to it.
        s.executemany("DELETE FROM outbox WHERE msg_id = ?", [(r["msg_id"],) for r in kept])
        s.executemany(
            "INSERT INTO outbox (msg_id, topic, priority, qos, retain, payload, created_at) "
            "VALUES (?, ?, ?, ?, 0, ?, ?)",
            [(r["msg_id"], r["topic"], r["priority"], r["qos"], r["payload"], s.now) for r in kept],
        )
        if kept:
            for listener in self._listeners:
                s.after.append(partial(listener, int(kept[0]["priority"])))
        return [int(r["txn_seq"]) for r in rows if r["msg_id"] is None]

    async def supersede_pending(self, tx: Transaction, kind: Uplink, type: str) -> int:
        """Drop this device's undelivered rows of `kind` and `type`: a new snapshot replaces
        stale ones, never a different message on the same topic (a boot record)."""
        return await tx.execute(
            "DELETE FROM outbox WHERE delivered_at IS NULL AND topic = ? "
            "AND json_extract(CAST(payload AS TEXT), '$.type') = ?",
            (self._topics.uplink(kind), type),
        )

    async def pending(
        self,
        limit: int,
        exclude: Sequence[int] = (),
        *,
        after: tuple[int, int] | None = None,
    ) -> list[OutboxRow]:
        """Undelivered rows, money first, oldest first within a priority.

        `after` is a (priority, seq) keyset cursor: a pump reads the backlog page by page
        along the pending index instead of re-reading what it already handed out.
        """
        conditions = ["delivered_at IS NULL"]
        params: list[object] = []
        if exclude:
            conditions.append(f"seq NOT IN ({','.join('?' * len(exclude))})")
            params.extend(exclude)
        if after is not None:
            conditions.append("(priority > ? OR (priority = ? AND seq > ?))")
            params.extend((after[0], after[0], after[1]))
        rows = await self._store.fetchall_bulk(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE {' AND '.join(conditions)} "
            "ORDER BY priority, seq LIMIT ?",
            (*params, limit),
        )
        # By position, in OUTBOX_COLUMNS order; BLOB columns already come back as bytes.
        return [OutboxRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7], r[8]) for r in rows]

    async def mark_delivered(self, seqs: Sequence[int]) -> None:
        """Mark a batch delivered in one transaction, committed without its own fsync."""
        if not seqs:
            return

        def mark(s: Statements) -> None:
            for start in range(0, len(seqs), MARK_CHUNK):
                chunk = seqs[start : start + MARK_CHUNK]
                marks = ",".join("?" * len(chunk))
                s.execute(
                    f"UPDATE outbox SET delivered_at = ? WHERE seq IN ({marks})"
                    " AND delivered_at IS NULL",
                    (s.now, *chunk),
                )

        # One hop for the UPDATEs and the COMMIT, without an fsync of its own: the writer
        # lock, which a sale's commit may be waiting for, is held one short round trip. A
        # mark lost to a power cut (not to a crash: the kernel has it) is a re-send of the
        # same envelope, which the cloud drops by id; the next fsynced commit persists it.
        async with self._store.transaction(fsync=False) as tx:
            tx.defer(mark)
        with self._guard:
            self._handed.difference_update(seqs)  # delivered: nothing left to withdraw

    async def prune_delivered(self, older_than: datetime) -> int:
        """Delivered rows older than `older_than`; `evt/txn` ones only after `TXN_KEEP` more."""
        async with self._store.transaction() as tx:
            return await tx.execute(
                "DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < ? "
                "AND (topic NOT LIKE '%/evt/txn' OR delivered_at < ?)",
                (rfc3339(older_than), rfc3339(older_than - TXN_KEEP)),
            )

    async def shed_telemetry(self) -> int:
        """Drop undelivered telemetry: the first thing to go when the store runs out of room."""
        async with self._store.transaction() as tx:
            return await tx.execute(
                "DELETE FROM outbox WHERE delivered_at IS NULL AND priority >= ?",
                (int(Priority.TELEMETRY),),
            )

    async def stats(self) -> OutboxStats:
        row = await self._store.fetchone(
            "SELECT "
            "(SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL), "
            "(SELECT MIN(created_at) FROM outbox WHERE delivered_at IS NULL), "
            "(SELECT COUNT(*) FROM outbox WHERE delivered_at IS NOT NULL)"
        )
        assert row is not None
        return OutboxStats(depth=row[0], oldest_created_at=row[1], delivered=row[2])
