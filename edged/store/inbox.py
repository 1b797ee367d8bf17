"""The inbox: a downlink id is recorded in the same transaction as its effect."""

from __future__ import annotations

from edged.contract.envelope import Envelope
from edged.store.database import Statements, Store


class Inbox:
    def __init__(self, store: Store) -> None:
        self._store = store

    def claim_now(self, s: Statements, envelope: Envelope, topic: str) -> bool:
        """Record the id, in the writer thread (the link defers it onto the handler's hop);
        False means it was seen before and must have no second effect."""
        changed = s.execute(
            "INSERT OR IGNORE INTO inbox (msg_id, topic, type, received_at) VALUES (?, ?, ?, ?)",
            (envelope.id, topic, envelope.type, s.now),
        )
        return changed == 1

    async def seen(self, msg_id: str) -> bool:
        row = await self._store.fetchone("SELECT 1 FROM inbox WHERE msg_id = ?", (msg_id,))
        return row is not None
