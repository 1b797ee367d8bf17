"""A payments service on a real SQLite store, with a controllable clock and a recording sink."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edged.config.models import Payments as PaymentsConfig
from edged.contract.envelope import Envelope, make_envelope
from edged.contract.signing import sign_envelope
from edged.contract.topics import DeviceTopics
from edged.link.downlink import HandlerRejected
from edged.services.payments.protocol import Settlement
from edged.services.payments.service import PaymentsService
from edged.store import Statements, Store
from edged.store.outbox import Outbox

TOPICS = DeviceTopics("s1", "k1")


class FakeClock:
    def __init__(self) -> None:
        self.moment = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def monotonic(self) -> float:
        return self.moment.timestamp()

    def synced(self) -> bool:
        return True

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@dataclass
class RecordingSink:
    settled: list[Settlement] = field(default_factory=list)
    shown: list[tuple[str, str]] = field(default_factory=list)

    def settle(self, s: Statements, settlement: Settlement) -> None:
        self.settled.append(settlement)
        s.execute(
            "UPDATE sales SET state = ? WHERE id = ?",
            (settlement.outcome.value, settlement.sale_id),
        )

    async def progress(self, sale_id: str, message: str) -> None:
        self.shown.append((sale_id, message))


@dataclass
class Harness:
    store: Store
    clock: FakeClock
    sink: RecordingSink
    service: PaymentsService
    backend: X25519PrivateKey
    signer: Ed25519PrivateKey

    async def new_sale(self, sale_id: str = "sale-1") -> str:
        async with self.store.transaction() as tx:
            seq = await tx.next_sequence("sale")
            await tx.execute(
                "INSERT INTO sales (id, seq, state, total_fen, created_at, clock_synced, "
                "updated_at) VALUES (?, ?, 'paying', 0, ?, 1, ?)",
                (sale_id, seq, tx.now, tx.now),
            )
        return sale_id

    async def sent(self, type_prefix: str = "pay.") -> list[dict[str, Any]]:
        rows = await self.store.fetchall("SELECT payload FROM outbox ORDER BY seq")
        found = [json.loads(row["payload"]) for row in rows]
        return [env for env in found if env["type"].startswith(type_prefix)]

    async def link_delivers(self) -> None:
        """What the link's pump does on PUBACK: every queued message left the kiosk."""
        async with self.store.transaction() as tx:
            await tx.execute("UPDATE outbox SET delivered_at = ? WHERE delivered_at IS NULL",
                             (tx.now,))  # fmt: skip

    async def payment(self, trade_no: str) -> dict[str, Any]:
        row = await self.store.fetchone("SELECT * FROM payments WHERE trade_no = ?", (trade_no,))
        assert row is not None
        return dict(row)

    def result(self, body: dict[str, Any], *, sign: bool = True) -> Envelope:
        envelope = make_envelope(
            type="pay.result",
            device=TOPICS.device,
            seq=1,
            body=body,
            now=self.clock.now(),
            clock_synced=True,
            ttl=timedelta(seconds=60),
        )
        return sign_envelope(envelope, self.signer) if sign else envelope

    async def deliver(self, envelope: Envelope) -> None:
        """What the link does: the handler runs inside the inbox transaction."""
        with contextlib.suppress(HandlerRejected):
            async with self.store.transaction() as tx:
                await self.service.handle_downlink(envelope, tx, None)
        for task in list(self.service._tasks):
            await task


async def make_harness(tmp_path: Path, **config: Any) -> Harness:
    clock = FakeClock()
    store = await Store.open(tmp_path / "edged.db", clock)
    backend = X25519PrivateKey.generate()
    settings = PaymentsConfig(
        **{"deadline_s": 10, "query_interval_s": 2, "native_qr_ttl_s": 30, **config}
    )
    sink = RecordingSink()
    service = PaymentsService(
        store, Outbox(store, TOPICS), settings, backend.public_key(), sink=sink
    )
    await service.start()
    return Harness(store, clock, sink, service, backend, Ed25519PrivateKey.generate())
