"""The inbox: a downlink id is recorded in the same transaction as its effect."""

from __future__ import annotations

from edged.contract.envelope import Envelope
from edged.store.database import Statements, Store, Transaction


class Inbox:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def claim(self, tx: Transaction, envelope: Envelope, topic: str) -> bool:
        """Record the id; False means it was seen before and must have no second effect."""
        return await tx.run(lambda s: self.claim_now(s, envelope, topic))

    def claim_now(self, s: Statements, envelope: Envelope, topic: str) -> bool:
        """`claim` for work already running in the writer thread, e.g. deferred work."""
        changed = s.execute(
            "INSERT OR IGNORE INTO inbox (msg_id, topic, type, received_at) VALUES (?, ?, ?, ?)",
            (envelope.id, topic, envelope.type, s.now),
        )
        return changed == 1

    async def seen(self, msg_id: str) -> bool:
        row = await self._store.fetchone("SELECT 1 FROM inbox WHERE msg_id = ?", (msg_id,))
        return row is not None
