"""The `payments` table: a trade's row is written here, one step per transaction.

A step writes the new state, its schedule, the request it sends (in the outbox, same
transaction), a `pay.doubt` report for operations when it parks or resolves a doubt and, for
a final state, the sales ledger's settlement, all in one hop to the writer thread. The code
itself is never stored: only the sealed request leaves, once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from edged.config.models import Payments as PaymentsConfig
from edged.contract.bodies import PayDoubt, PayMethod, dump_body
from edged.contract.envelope import rfc3339
from edged.contract.topics import Uplink
from edged.services.payments.protocol import PaymentMethod, Settlement, SettlementSink
from edged.services.payments.requests import PARKED_RETRY_MAX_S, _request_body, _retry_delay
from edged.services.payments.states import FINAL, PARKED, PayState, Request, Step, withdraw
from edged.store import Statements, Store, Transaction
from edged.store.outbox import Outbox

log = logging.getLogger("edged.payments")

OPEN_STATES = tuple(s.value for s in PayState if s not in FINAL)
"""Every payment the engine still works on, parked ones included."""
BLOCKING_STATES = tuple(s.value for s in PayState if s not in FINAL and s not in PARKED)
"""Payments that keep the kiosk from taking a new sale."""
PARKED_VALUES = tuple(s.value for s in PARKED)
DOUBT_STATES = {
    PayState.IN_DOUBT: "in_doubt",
    PayState.REVERSED: "reversed",
    PayState.CANCELLED: "cancelled",
    PayState.PAID_LATE: "paid_late",
}


class PaymentRecords:
    """The service's state, and the writes of a payment's row."""

    _store: Store
    _outbox: Outbox
    _config: PaymentsConfig
    _seal_key: X25519PublicKey | None
    _sink: SettlementSink
    _open: dict[str, str]
    """trade_no -> sale_id of every committed non-final payment."""
    _wake: asyncio.Event
    _idle: asyncio.Event
    _tasks: set[asyncio.Task[None]]
    rejected: Counter[str]
    applied: Counter[str]

    async def _apply(
        self, tx: Transaction, row: Any, step: Step, now: datetime, transaction_id: str = ""
    ) -> Step:
        return await tx.run(lambda s: self._apply_now(s, row, step, now, transaction_id))

    def _apply_now(
        self,
        s: Statements,
        row: Any,
        step: Step,
        now: datetime,
        transaction_id: str = "",
        *,
        answered: bool = False,
    ) -> Step:
        """Write the step: state, schedule, outbound request and (when final) settlement,
        all in one hop to the writer thread; returns the step written. A cancel whose
        request never left the kiosk becomes a withdrawal (never for a step `answered` by
        the backend: an answer proves the request arrived)."""
        if not answered:
            step = self._withdrawn_instead(s, row, step)
        trade_no = row["trade_no"]
        entering = step.state.value != row["state"]
        stage_started = s.now if entering else row["stage_started_at"]
        attempts = row["attempts"]
        # Parking keeps counting the cancels it goes on sending.
        restart = entering and step.state not in PARKED
        reverse_attempts = 0 if restart else row["reverse_attempts"]
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
            elif step.state in PARKED:
                delay = _retry_delay(
                    self._config.query_interval_s, reverse_attempts, PARKED_RETRY_MAX_S
                )
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
        if (
            entering
            and step.state in DOUBT_STATES
            and (step.state in PARKED or PayState(row["state"]) in PARKED)
        ):
            self._report_doubt(s, row, step, transaction_id)
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
        return step

    def _withdrawn_instead(self, s: Statements, row: Any, step: Step) -> Step:
        """Giving up (deadline, expiry, cancel) while the request is still in this kiosk's
        outbox, never handed to the broker: delete it in this transaction and end unpaid."""
        state = PayState(row["state"])
        if step.send not in (Request.REVERSE, Request.CLOSE):
            return step
        if state not in (PayState.REQUESTED, PayState.NATIVE_OPEN):
            return step  # user_paying: the backend answered, so the request arrived
        request_msg = str(json.loads(row["detail"]).get("request_msg", ""))
        ended = withdraw(state)
        if ended is None or not request_msg or not self._outbox.withdraw_now(s, request_msg):
            return step
        log.info(
            "payment request withdrawn: it never left the kiosk",
            extra={"trade_no": row["trade_no"], "reason": step.reason},
        )
        return ended

    def _report_doubt(self, s: Statements, row: Any, step: Step, transaction_id: str) -> None:
        """Tell operations about a parked payment (entering doubt, or its end)."""
        body = PayDoubt(
            trade_no=row["trade_no"],
            sale_id=row["sale_id"],
            method=PayMethod(row["method"]),
            amount_fen=row["amount_fen"],
            state=DOUBT_STATES[step.state],
            reason=step.reason or "cancel unconfirmed",
            transaction_id=transaction_id or row["transaction_id"] or "",
            refund_due=step.state is PayState.PAID_LATE,
        )
        self._outbox.write(s, Uplink.PAY, "pay.doubt", dump_body(body))

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
