"""The payments service: persisted micropay and native-QR state machines driven by one engine.

Every state change is one transaction holding the new `payments` row state, the evt/pay
outbox message that reports it and, for a final state, the sales ledger's settlement; only
then is the shopper told anything. Results arrive as verified `cmd/pay` envelopes inside the
link's inbox transaction, and release goods only for the exact trade number and amount on
record.

Doubt is bounded for the shopper, not for the money: a cancel (reverse or close) still not
confirmed `reverse_timeout_s` after it began parks the payment `in_doubt`. The sale is
parked with it (not paid, nothing released), the kiosk takes the next shopper, and the
engine keeps sending the cancel with back-off up to `PARKED_RETRY_MAX_S`, reporting each
change to operations on `evt/pay` (`pay.doubt`). A SUCCESS for a parked trade is recorded
(`paid_late`, refund due) and releases nothing. A request still in the kiosk's own outbox
when the kiosk gives up is withdrawn instead (`withdrawn`): it never leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, NoReturn

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from edged.config.models import Payments as PaymentsConfig
from edged.contract.bodies import (
    Body,
    BodyError,
    CloseRequest,
    MicropayRequest,
    NativeCreateRequest,
    PayDoubt,
    PayMethod,
    PayResult,
    QueryRequest,
    ReverseRequest,
    TradeState,
    dump_body,
    envelope_body,
)
from edged.contract.envelope import Envelope, parse_rfc3339, rfc3339
from edged.contract.ids import new_id
from edged.contract.topics import Uplink
from edged.link.downlink import HandlerRejected
from edged.runtime.backoff import Backoff
from edged.services.payments.codes import classify_payment_code
from edged.services.payments.protocol import (
    NativeQr,
    PaymentMethod,
    Settlement,
    SettlementSink,
)
from edged.services.payments.sealing import seal_code
from edged.services.payments.states import (
    FINAL,
    PARKED,
    PayState,
    Request,
    Step,
    on_cancel,
    on_due,
    on_stuck,
    withdraw,
)
from edged.services.payments.states import on_result as result_step
from edged.store import Statements, Store, StoreUnwritable, Transaction
from edged.store.outbox import Outbox

log = logging.getLogger("edged.payments")

RESULT_TYPE = "pay.result"
MAX_IDLE_WAIT_S = 60.0
RETRY_MAX_S = 30.0
PARKED_RETRY_MAX_S = 300.0
PARK_ON_CANCEL_AFTER_S = 5.0
"""A cancel asked again this long after the first one parks the payment (staff's way out)."""
"""A parked payment's cancel is re-sent at most this far apart."""
OPEN_STATES = tuple(s.value for s in PayState if s not in FINAL)
"""Every payment the engine still works on, parked ones included."""
BLOCKING_STATES = tuple(s.value for s in PayState if s not in FINAL and s not in PARKED)
"""Payments that keep the kiosk from taking a new sale."""
PARKED_VALUES = tuple(s.value for s in PARKED)
REVERSE_REASONS = ("deadline", "unknown_result", "shopper_cancelled")
DOUBT_STATES = {
    PayState.IN_DOUBT: "in_doubt",
    PayState.REVERSED: "reversed",
    PayState.CANCELLED: "cancelled",
    PayState.PAID_LATE: "paid_late",
}


class PaymentRejected(ValueError):
    """A request the service refuses before anything happened; the message is for the shopper."""


class PaymentsService:
    """Implements `Payments` for checkout; `handle_downlink` is registered for `cmd/pay`."""

    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        config: PaymentsConfig,
        seal_key: X25519PublicKey | None,
        *,
        sink: SettlementSink,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._config = config
        self._seal_key = seal_key
        self._sink = sink
        self._open: dict[str, str] = {}
        """trade_no -> sale_id of every committed non-final payment."""
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.rejected: Counter[str] = Counter()
        self.applied: Counter[str] = Counter()
        store.on_write_trouble(self._store_trouble)

    def _store_trouble(self, reason: str) -> None:
        if not reason:
            self._wake.set()  # the disk takes writes again: act on what is due now

    # -- Payments protocol ----------------------------------------------------------------

    def busy(self) -> bool:
        return bool(self._open)

    async def start(self) -> None:
        """Load the open payments, so `busy()` is right before the engine first runs."""
        await self._refresh_open()

    async def pay_by_code(self, sale_id: str, amount_fen: int, code: str) -> str:
        method = classify_payment_code(code)
        if method is None:
            raise PaymentRejected("not a WeChat Pay or Alipay payment code")
        self._check_new(sale_id, amount_fen)
        if self._seal_key is None:
            raise PaymentRejected("payment codes cannot be accepted: no backend seal key")
        trade_no = new_id().replace("-", "")
        request = MicropayRequest(
            trade_no=trade_no,
            sale_id=sale_id,
            method=PayMethod(method.value),
            amount_fen=amount_fen,
            sealed_code=seal_code(code, trade_no, self._seal_key),
        )
        del code
        now = self._store.clock.now()
        deadline = now + timedelta(seconds=self._config.deadline_s)
        async with self._store.transaction() as tx:
            sent = await self._outbox.add(tx, Uplink.PAY, "pay.micropay", dump_body(request))
            await self._insert(
                tx, trade_no, sale_id, method, amount_fen, PayState.REQUESTED, deadline, now,
                {"last_msg": sent.id, "request_msg": sent.id},
            )  # fmt: skip
        self._opened(trade_no, sale_id)
        log.info(
            "micropay requested",
            extra={
                "trade_no": trade_no,
                "sale_id": sale_id,
                "method": method.value,
                "amount_fen": amount_fen,
            },
        )
        return trade_no

    async def pay_by_qr(self, sale_id: str, amount_fen: int) -> NativeQr:
        self._check_new(sale_id, amount_fen)
        trade_no = new_id().replace("-", "")
        session = secrets.token_urlsafe(12)
        now = self._store.clock.now()
        expires = now + timedelta(seconds=self._config.native_qr_ttl_s)
        request = NativeCreateRequest(
            trade_no=trade_no,
            sale_id=sale_id,
            amount_fen=amount_fen,
            session=session,
            expires_at=rfc3339(expires),
        )
        async with self._store.transaction() as tx:
            sent = await self._outbox.add(tx, Uplink.PAY, "pay.native_create", dump_body(request))
            await self._insert(
                tx, trade_no, sale_id, PaymentMethod.NATIVE_QR, amount_fen,
                PayState.NATIVE_OPEN, expires, now,
                {"session": session, "last_msg": sent.id, "request_msg": sent.id},
            )  # fmt: skip
        self._opened(trade_no, sale_id)
        log.info(
            "native order registered",
            extra={"trade_no": trade_no, "sale_id": sale_id, "amount_fen": amount_fen},
        )
        return NativeQr(trade_no=trade_no, qr_data=session, expires_at=expires)

    async def cancel(self, sale_id: str) -> None:
        trades = [t for t, s in self._open.items() if s == sale_id]
        for trade_no in trades:
            async with self._store.transaction() as tx:
                row = await _load(tx, trade_no)
                step = on_cancel(PayState(row["state"])) if row else None
                if row is None or step is None or self._cancel_pressed_again(row):
                    continue
                step = await self._apply(tx, row, step, self._store.clock.now())
            await self._after_commit([(trade_no, sale_id, step)])

    async def recover(self) -> None:
        """Query every open payment now and wait until each one reached a final state."""
        count = 0
        try:
            async with self._store.transaction() as tx:
                count = await tx.execute(
                    f"UPDATE payments SET next_at = ? WHERE state IN ({_marks(OPEN_STATES)})",
                    (tx.now, *OPEN_STATES),
                )
        except StoreUnwritable:
            pass  # each open payment keeps its own next_at: the engine acts once it can write
        await self._refresh_open()
        if count:
            log.info("recovering open payments", extra={"open": count})
        self._wake.set()
        await self._idle.wait()

    # -- the engine ---------------------------------------------------------------------

    async def run(self) -> None:
        """Query, reverse and close on time; sleeps until the next due payment or a wake-up."""
        await self._refresh_open()
        store_backoff = Backoff(0.5, RETRY_MAX_S)
        while True:
            self._wake.clear()
            try:
                wait_s = await self.tick()
                store_backoff.reset()
            except StoreUnwritable as exc:
                # Nothing was written: the due payments stay due and are acted on once the
                # disk takes writes again. Money is untouched either way.
                wait_s = store_backoff.next_delay()
                log.error(
                    "payments wait for the store",
                    extra={"reason": exc.reason, "retry_in_s": round(wait_s, 2)},
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_s)

    async def tick(self) -> float:
        """One engine round: act on every due payment; returns seconds until the next one."""
        now = self._store.clock.now()
        due = await self._store.fetchall(
            "SELECT trade_no FROM payments WHERE next_at IS NOT NULL AND next_at <= ? "
            "ORDER BY next_at",
            (rfc3339(now),),
        )
        for item in due:
            trade_no = item["trade_no"]
            async with self._store.transaction() as tx:
                row = await _load(tx, trade_no)
                if row is None or row["next_at"] is None or row["next_at"] > tx.now:
                    continue
                step = self._due_step(row, now)
                if step is None:
                    continue
                step = await self._apply(tx, row, step, now)
            await self._after_commit([(trade_no, row["sale_id"], step)])
        upcoming = await self._store.fetchone(
            "SELECT MIN(next_at) FROM payments WHERE next_at IS NOT NULL"
        )
        if upcoming is None or upcoming[0] is None:
            return MAX_IDLE_WAIT_S
        delta = (parse_rfc3339(upcoming[0]) - self._store.clock.now()).total_seconds()
        return min(MAX_IDLE_WAIT_S, max(0.01, delta))

    def _cancel_pressed_again(self, row: Any) -> bool:
        """A second cancel within moments of the first is the same press, not staff giving
        up on an unconfirmed cancel: it parks nothing."""
        if row["state"] not in (PayState.REVERSING, PayState.CLOSING):
            return False
        started = parse_rfc3339(row["stage_started_at"])
        waited = (self._store.clock.now() - started).total_seconds()
        return waited < min(PARK_ON_CANCEL_AFTER_S, self._config.reverse_timeout_s)

    def _due_step(self, row: Any, now: datetime) -> Step | None:
        """What a due payment does now: a cancel unconfirmed past the reverse timeout parks
        it; anything else is the state machine's due step."""
        state = PayState(row["state"])
        started = row["stage_started_at"]
        if state in (PayState.REVERSING, PayState.CLOSING) and started:
            waited = (now - parse_rfc3339(started)).total_seconds()
            if waited >= self._config.reverse_timeout_s:
                log.error(
                    "payment parked in doubt: the backend does not confirm the cancel",
                    extra={"trade_no": row["trade_no"], "waited_s": round(waited)},
                )
                return on_stuck(state)
        deadline = parse_rfc3339(row["deadline_at"]) if row["deadline_at"] else None
        native = row["method"] == PaymentMethod.NATIVE_QR.value
        return on_due(state, now, deadline, native=native)

    # -- downlink -----------------------------------------------------------------------

    async def handle_downlink(self, envelope: Envelope, tx: Transaction, address: Any) -> None:
        """A verified cmd/pay envelope, inside the inbox transaction: apply it or reject it.

        The link has checked signature, expiry, replay and addressing; this checks that the
        result is for a trade on record, for exactly its amount. A rejection has no effect.
        """
        try:
            result = envelope_body(envelope, RESULT_TYPE, PayResult)
        except BodyError as exc:
            self._reject(envelope, str(exc))
        now = self._store.clock.now()

        def check_and_apply(s: Statements) -> None:
            row = _load_now(s, result.trade_no)
            if row is None:
                self._reject(envelope, "unknown trade number", result.trade_no)
            not_found = result.state is TradeState.NOT_FOUND and result.amount_fen is None
            if not not_found and result.amount_fen != row["amount_fen"]:
                self._reject(envelope, "amount does not match the trade", result.trade_no)
            state = PayState(row["state"])
            step = result_step(state, result.state, result.reason)
            if step is not None and step.state is PayState.PAID_LATE:
                log.error(
                    "SUCCESS for a parked payment: recorded, nothing released, refund due",
                    extra={"trade_no": result.trade_no, "amount_fen": row["amount_fen"]},
                )
            if step is None:
                if (
                    state in FINAL
                    and state is not PayState.PAID
                    and result.state.value == "SUCCESS"
                ):
                    log.error(
                        "SUCCESS for a payment already ended unpaid: backend must refund",
                        extra={"trade_no": result.trade_no, "state": state.value},
                    )
                s.after.append(lambda: self.applied.update(ignored=1))
                return
            applied = self._apply_now(s, row, step, now, result.transaction_id, answered=True)
            s.after.append(lambda: self._result_applied(envelope, result, row["sale_id"], applied))

        # Deferred: check and apply ride on the inbox transaction's COMMIT, so the sale's
        # durable commit is one hop to the writer thread.
        tx.defer(check_and_apply)

    def _result_applied(
        self, envelope: Envelope, result: PayResult, sale_id: str, step: Step
    ) -> None:
        self.applied[step.state.value] += 1
        log.info(
            "payment result applied",
            extra={
                "trade_no": result.trade_no,
                "result": result.state.value,
                "state": step.state.value,
                "msg_id": envelope.id,
            },
        )
        self._spawn(self._after_commit([(result.trade_no, sale_id, step)], barrier=True))

    def _reject(self, envelope: Envelope, reason: str, trade_no: str = "") -> NoReturn:
        """Count and log, then make the link roll the inbox transaction back: no effect."""
        self.rejected[reason.split(":")[0]] += 1
        log.warning(
            "payment result rejected",
            extra={"reason": reason, "msg_id": envelope.id, "trade_no": trade_no},
        )
        raise HandlerRejected(reason)

    # -- shared steps -------------------------------------------------------------------

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

    async def _after_commit(
        self, changes: Iterable[tuple[str, str, Step]], barrier: bool = False
    ) -> None:
        """Tell checkout's display and update `busy()`, once the change is durable.

        With `barrier`, the change was made in someone else's transaction (the inbox's): an
        empty transaction waits for it to commit, and a rolled-back change is not announced.
        """
        if barrier:
            async with self._store.transaction():
                pass
        for trade_no, sale_id, step in changes:
            if barrier:
                row = await self._store.fetchone(
                    "SELECT state FROM payments WHERE trade_no = ?", (trade_no,)
                )
                if row is None or row["state"] != step.state.value:
                    continue
            if step.state in FINAL or step.state in PARKED:
                self._closed(trade_no)
            if step.progress:
                await self._progress(sale_id, step.progress)
        self._wake.set()

    async def _progress(self, sale_id: str, message: str) -> None:
        try:
            await self._sink.progress(sale_id, message)
        except Exception as exc:
            log.warning("display update failed", extra={"reason": f"{type(exc).__name__}"})

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- bookkeeping --------------------------------------------------------------------

    def _check_new(self, sale_id: str, amount_fen: int) -> None:
        if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
            raise PaymentRejected("amount must be a positive whole number of fen")
        if amount_fen > self._config.max_sale_fen:
            raise PaymentRejected(
                f"amount {amount_fen} fen is above the limit of {self._config.max_sale_fen} fen"
            )
        if self._open:
            raise PaymentRejected("another payment is still being resolved")

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

    def _opened(self, trade_no: str, sale_id: str) -> None:
        self._open[trade_no] = sale_id
        self._idle.clear()
        self._wake.set()

    def _closed(self, trade_no: str) -> None:
        self._open.pop(trade_no, None)
        if not self._open:
            self._idle.set()

    async def _refresh_open(self) -> None:
        rows = await self._store.fetchall(
            f"SELECT trade_no, sale_id FROM payments WHERE state IN ({_marks(BLOCKING_STATES)})",
            BLOCKING_STATES,
        )
        self._open = {row["trade_no"]: row["sale_id"] for row in rows}
        if self._open:
            self._idle.clear()
        else:
            self._idle.set()

    async def status(self) -> dict[str, Any]:
        rows = await self._store.fetchall(
            "SELECT trade_no, sale_id, method, amount_fen, state, deadline_at, attempts, "
            f"reverse_attempts FROM payments WHERE state IN ({_marks(BLOCKING_STATES)})",
            BLOCKING_STATES,
        )
        parked = await self.in_doubt()
        last = await self._store.fetchone(
            "SELECT trade_no, sale_id, method, amount_fen, state, transaction_id FROM payments "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1"
        )
        return {
            "busy": self.busy(),
            "open": [dict(row) for row in rows],
            "last": dict(last) if last else None,
            "rejected_results": dict(self.rejected),
            "applied_results": dict(self.applied),
            "in_doubt": parked["in_doubt"],
            "refund_due": parked["refund_due"],
        }

    async def in_doubt(self) -> dict[str, list[dict[str, Any]]]:
        """For the technician: parked payments still being resolved, and late successes
        whose money must go back."""
        columns = (
            "trade_no, sale_id, method, amount_fen, state, reverse_attempts, "
            "stage_started_at, updated_at, transaction_id, json_extract(detail, '$.reason') "
            "AS reason"
        )
        parked = await self._store.fetchall(
            f"SELECT {columns} FROM payments WHERE state IN ({_marks(PARKED_VALUES)}) "
            "ORDER BY created_at",
            PARKED_VALUES,
        )
        late = await self._store.fetchall(
            f"SELECT {columns} FROM payments WHERE state = ? ORDER BY created_at",
            (PayState.PAID_LATE.value,),
        )
        return {"in_doubt": [dict(r) for r in parked], "refund_due": [dict(r) for r in late]}


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


def _retry_delay(initial_s: float, attempt: int, maximum_s: float = RETRY_MAX_S) -> float:
    """The one backoff helper, replayed to the persisted attempt count."""
    backoff = Backoff(initial_s=initial_s, maximum_s=max(initial_s, maximum_s), jitter=False)
    delay = initial_s
    for _ in range(max(1, attempt)):
        delay = backoff.next_delay()
    return delay


def _request_body(
    send: Request, trade_no: str, reason: str, attempts: int, reverse_attempts: int
) -> dict[str, Any]:
    body: Body
    if send is Request.QUERY:
        body = QueryRequest(trade_no=trade_no, attempt=attempts)
    elif send is Request.REVERSE:
        body = ReverseRequest.model_validate(
            {
                "trade_no": trade_no,
                "reason": reason if reason in REVERSE_REASONS else "deadline",
                "attempt": reverse_attempts,
            }
        )
    else:
        body = CloseRequest.model_validate(
            {
                "trade_no": trade_no,
                "reason": "shopper_cancelled" if reason == "shopper_cancelled" else "expired",
                "attempt": reverse_attempts,
            }
        )
    return dump_body(body)
