"""The `payments` table: a trade's row is written here, one step per transaction.

A step writes the new state, its schedule, the request it sends (in the outbox, same
transaction) and, for a final state, the sales ledger's settlement, all in one hop to the
writer thread. The code itself is never stored: only the sealed request leaves, once.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from edged.config.models import Payments as PaymentsConfig
from edged.contract.envelope import rfc3339
from edged.contract.topics import Uplink
from edged.services.payments.protocol import PaymentMethod, Settlement, SettlementSink
from edged.services.payments.requests import _request_body, _retry_delay
from edged.services.payments.states import FINAL, PayState, Request, Step
from edged.store import Statements, Store, Transaction
from edged.store.outbox import Outbox

OPEN_STATES = tuple(s.value for s in PayState if s not in FINAL)


class PaymentRecords:
    """The service's state, and the writes of a payment's row."""

    _store: Store
    _outbox: Outbox
    _config: PaymentsConfig
    _sink: SettlementSink
    _open: dict[str, str]
    """trade_no -> sale_id of every committed non-final payment."""
    _wake: asyncio.Event
    _idle: asyncio.Event
    _tasks: set[asyncio.Task[None]]
    _alarmed: set[str]
    rejected: Counter[str]
    applied: Counter[str]

    async def _apply(
        self, tx: Transaction, row: Any, step: Step, now: datetime, transaction_id: str = ""
    ) -> None:
        await tx.run(lambda s: self._apply_now(s, row, step, now, transaction_id))

    def _apply_now(
        self, s: Statements, row: Any, step: Step, now: datetime, transaction_id: str = ""
    ) -> None:
        """Write the step: state, schedule, outbound request and (when final) settlement,
        all in one hop to the writer thread."""
        trade_no = row["trade_no"]
        entering = step.state.value != row["state"]
        stage_started = s.now if entering else row["stage_started_at"]
        attempts = row["attempts"]
        reverse_attempts = 0 if entering else row["reverse_attempts"]
        detail = json.loads(row["detail"])
        last_msg = str(detail.get("last_msg", ""))
        send = step.send
        if send is not None and not entering and _undelivered(s, last_msg):
            send = None  # the last request has not left the kiosk: one in the queue is enough
        if send is Request.QUERY:
            attempts += 1
        elif send is not None:
            reverse_attempts += 1
        next_at: str | None = None
        if step.state not in FINAL:
            delay = self._config.query_interval_s
            if step.state in (PayState.REVERSING, PayState.CLOSING):
                delay = _retry_delay(self._config.query_interval_s, reverse_attempts)
            next_at = rfc3339(now + timedelta(seconds=delay))
        reason = step.reason or str(detail.get("reason", ""))
        if send is not None:
            body = _request_body(send, trade_no, reason, attempts, reverse_attempts)
            last_msg = self._outbox.write(s, Uplink.PAY, send.value, body).id
        s.execute(
            "UPDATE payments SET state = ?, next_at = ?, attempts = ?, reverse_attempts = ?, "
            "stage_started_at = ?, transaction_id = CASE WHEN ? = '' THEN transaction_id "
            "ELSE ? END, detail = json_set(detail, '$.reason', ?, '$.last_msg', ?), "
            "updated_at = ? "
            "WHERE trade_no = ?",
            (
                step.state.value,
                next_at,
                attempts,
                reverse_attempts,
                stage_started,
                transaction_id,
                transaction_id,
                reason,
                last_msg,
                s.now,
                trade_no,
            ),
        )
        if step.outcome is not None:
            self._sink.settle(
                s,
                Settlement(
                    sale_id=row["sale_id"],
                    trade_no=trade_no,
                    method=PaymentMethod(row["method"]),
                    amount_fen=row["amount_fen"],
                    outcome=step.outcome,
                    reason=step.reason,
                ),
            )

    async def _insert(
        self,
        tx: Transaction,
        trade_no: str,
        sale_id: str,
        method: PaymentMethod,
        amount_fen: int,
        state: PayState,
        deadline: datetime,
        now: datetime,
        detail: dict[str, str],
    ) -> None:
        await tx.execute(
            "INSERT INTO payments (trade_no, sale_id, method, amount_fen, state, deadline_at, "
            "attempts, detail, created_at, updated_at, next_at, stage_started_at) "
            "VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
            (
                trade_no,
                sale_id,
                method.value,
                amount_fen,
                state.value,
                rfc3339(deadline),
                json.dumps(detail),
                tx.now,
                tx.now,
                rfc3339(now + timedelta(seconds=self._config.query_interval_s)),
                tx.now,
            ),
        )


def _undelivered(s: Statements, msg_id: str) -> bool:
    """Is this request still waiting in the outbox (link down)? Delivered rows are marked."""
    if not msg_id:
        return False
    row = s.fetchone("SELECT 1 FROM outbox WHERE msg_id = ? AND delivered_at IS NULL", (msg_id,))
    return row is not None


async def _load(tx: Transaction, trade_no: str) -> Any:
    return await tx.run(lambda s: _load_now(s, trade_no))


def _load_now(s: Statements, trade_no: str) -> Any:
    return s.fetchone("SELECT * FROM payments WHERE trade_no = ?", (trade_no,))


def _marks(values: tuple[str, ...]) -> str:
    return ",".join("?" * len(values))
