"""Reconciliation as pure functions: what differs between the kiosk's day and the backend's.

`local_only`: the kiosk sent it, the backend does not have it (lost on the way) - resent.
`remote_only`: the backend has a transaction this kiosk never journaled - cannot be resent.
`amount_mismatch`: both have it with different amounts - resent, so the backend can correct.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from edged.contract.bodies import ReconTxn
from edged.services.settlement.figures import JournalTxn


@dataclass(frozen=True)
class Difference:
    txn_id: str
    kind: str
    txn_seq: int | None
    local_fen: int | None
    remote_fen: int | None

    def as_dict(self) -> dict[str, object]:
        return {
            "txn_id": self.txn_id,
            "kind": self.kind,
            "txn_seq": self.txn_seq,
            "local_fen": self.local_fen,
            "remote_fen": self.remote_fen,
        }


def classify(local: Iterable[JournalTxn], remote: Iterable[ReconTxn]) -> list[Difference]:
    mine = {t.msg_id: t for t in local}
    theirs = {t.txn_id: t.amount_fen for t in remote}
    found = []
    for msg_id, txn in mine.items():
        if msg_id not in theirs:
            found.append(Difference(msg_id, "local_only", txn.txn_seq, txn.amount_fen, None))
        elif theirs[msg_id] != txn.amount_fen:
            found.append(
                Difference(msg_id, "amount_mismatch", txn.txn_seq, txn.amount_fen, theirs[msg_id])
            )
    for txn_id, fen in theirs.items():
        if txn_id not in mine:
            found.append(Difference(txn_id, "remote_only", None, None, fen))
    return sorted(found, key=lambda d: (d.txn_seq is None, d.txn_seq or 0, d.txn_id))


def ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Consecutive sequence numbers folded into (first, last) ranges: what is resent."""
    folded: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if folded and seq == folded[-1][1] + 1:
            folded[-1] = (folded[-1][0], seq)
        else:
            folded.append((seq, seq))
    return folded
