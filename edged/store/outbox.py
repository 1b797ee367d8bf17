"""The transactional outbox: a fact's message is written in the same transaction as the fact.

The envelope (id, seq, ts) is fixed when the row is written, so a re-send after a crash is
byte-identical and the cloud drops it by id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edged.contract.envelope import Envelope, make_envelope, parse_rfc3339, rfc3339
from edged.contract.topics import UPLINK_RULES, DeviceTopics, Priority, Uplink
from edged.store.database import Store, Transaction

UPLINK_SEQUENCE = "uplink"


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    msg_id: str
    topic: str
    priority: int
    qos: int
    retain: bool
    payload: bytes
    created_at: str


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

    async def add(
        self,
        tx: Transaction,
        kind: Uplink,
        type: str,
        body: dict[str, Any],
        *,
        request_id: str | None = None,
    ) -> Envelope:
        """Queue one uplink message inside the caller's transaction."""
        rule = UPLINK_RULES[kind]
        envelope = make_envelope(
            type=type,
            device=self._topics.device,
            seq=await tx.next_sequence(UPLINK_SEQUENCE),
            body=body,
            now=self._store.clock.now(),
            clock_synced=self._store.clock.synced(),
        )
        await tx.insert(
            "INSERT INTO outbox (msg_id, topic, priority, qos, retain, payload, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                envelope.id,
                self._topics.uplink(kind, request_id),
                int(rule.priority),
                rule.qos,
                int(rule.retain),
                envelope.to_bytes(),
                tx.now,
            ),
        )
        return envelope

    async def pending(self, limit: int, exclude: Sequence[int] = ()) -> list[OutboxRow]:
        """Undelivered rows, money first, oldest first within a priority."""
        placeholders = ",".join("?" * len(exclude))
        where = f"AND seq NOT IN ({placeholders})" if exclude else ""
        rows = await self._store.fetchall(
            "SELECT seq, msg_id, topic, priority, qos, retain, payload, created_at FROM outbox "
            f"WHERE delivered_at IS NULL {where} ORDER BY priority, seq LIMIT ?",
            (*exclude, limit),
        )
        return [
            OutboxRow(
                seq=row["seq"],
                msg_id=row["msg_id"],
                topic=row["topic"],
                priority=row["priority"],
                qos=row["qos"],
                retain=bool(row["retain"]),
                payload=bytes(row["payload"]),
                created_at=row["created_at"],
            )
            for row in rows
        ]

    async def mark_delivered(self, seqs: Sequence[int]) -> None:
        if not seqs:
            return
        async with self._store.transaction() as tx:
            await tx.executemany(
                "UPDATE outbox SET delivered_at = ? WHERE seq = ? AND delivered_at IS NULL",
                [(tx.now, seq) for seq in seqs],
            )

    async def prune_delivered(self, older_than: datetime) -> int:
        async with self._store.transaction() as tx:
            return await tx.execute(
                "DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?",
                (rfc3339(older_than),),
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
