"""The refunds service: one persisted state machine per refund, started only three ways.

An operations command (`op.refund` on cmd/op), the technician at the kiosk (`refund.start`
behind the technician token) or a sale marked for refund (`refund_marks`, goods not
released). Each start is one transaction holding the refund row, its lines and the
`refund.request` on evt/pay, after the limits were checked against committed facts in that
same transaction: never more than paid minus refunded, at most `max_per_sale` refunds per
sale, one in flight per sale (also a unique index).

Results arrive as verified `refund.result` envelopes on cmd/pay inside the link's inbox
transaction. A SUCCESS commits the refund, the stock it returns (by reason) and the
`txn.refunded` record on evt/txn together; CLOSED and ABNORMAL are final and escalated
(`refund.escalated` on evt/pay, an error in the log, `edged status`), never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal, NoReturn

from edged.config.models import Refunds as RefundsConfig
from edged.contract.bodies import (
    BodyError,
    RefundEscalated,
    RefundQuery,
    RefundReason,
    RefundRequest,
    RefundResult,
    dump_body,
    envelope_body,
)
from edged.contract.envelope import Envelope, parse_rfc3339, rfc3339
from edged.contract.topics import Uplink
from edged.link.downlink import HandlerRejected
from edged.services.printing.queue import PrintQueue
from edged.services.refunds.slip import REFUND_SLIP, slip_document
from edged.services.refunds.states import (
    ESCALATED,
    IN_FLIGHT,
    RefundState,
    Send,
    Step,
    delay_after,
    on_due,
    on_result,
)
from edged.store import Statements, Store, Transaction
from edged.store.outbox import Outbox

log = logging.getLogger("edged.refunds")

RESULT_TYPE = "refund.result"
MARK_POLL_S = 5.0
"""How often sales marked for refund (by the release service) are looked for, at most."""
Origin = Literal["ops", "technician", "auto"]
SLIP_ORIGINS: frozenset[str] = frozenset({"technician", "auto"})
"""Refunds done at the kiosk print a slip; one started remotely by ops has nobody to take it."""


class RefundRefused(ValueError):
    """Refused before anything happened; the message says why (for the caller, safe to log)."""


@dataclass(frozen=True)
class RefundAsk:
    sale_id: str
    kind: Literal["full", "lines", "amount"]
    reason: RefundReason
    origin: Origin
    lines: tuple[tuple[int, int], ...] = ()
    """(line_no, quantity) pairs for a refund by lines."""
    amount_fen: int | None = None
    request_id: str | None = None
    """Makes the start idempotent: the same request id answers with the same refund."""


@dataclass(frozen=True)
class Started:
    refund_no: str
    amount_fen: int
    state: str
    again: bool
    """True when this request id had already started this refund (nothing new happened)."""


def refund_no_for(sale_id: str, refund_seq: int) -> str:
    """Deterministic: the sale and its refund sequence, 32 characters (the channels' limit)."""
    return f"{sale_id.replace('-', '')[:29]}R{refund_seq:02d}"


class RefundsService:
    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        config: RefundsConfig,
        print_queue: PrintQueue,
        shop_name: str,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._config = config
        self._print_queue = print_queue
        self._shop_name = shop_name
        self._wake = asyncio.Event()
        self.rejected: Counter[str] = Counter()
        self.applied: Counter[str] = Counter()

    def wake(self) -> None:
        """Something changed (a refund started, a mark placed): look at the schedule now."""
        self._wake.set()

    # -- starting a refund --------------------------------------------------------------

    async def start(self, ask: RefundAsk) -> Started:
        async with self._store.transaction() as tx:
            started = await tx.run(lambda s: self.start_now(s, ask))
        self._wake.set()
        return started

    def start_now(self, s: Statements, ask: RefundAsk) -> Started:
        """Check the limits and write the refund with its request, in the writer thread."""
        if ask.request_id:
            known = s.fetchone(
                "SELECT refund_no, amount_fen, state, sale_id FROM refunds WHERE request_id = ?",
                (ask.request_id,),
            )
            if known is not None:
                if known["sale_id"] != ask.sale_id:
                    raise RefundRefused("this request id already refunded another sale")
                return Started(known["refund_no"], known["amount_fen"], known["state"], True)
        sale = s.fetchone(
            "SELECT s.seq, s.state, s.paid_trade_no, p.amount_fen AS paid_fen, p.state AS pay "
            "FROM sales s LEFT JOIN payments p ON p.trade_no = s.paid_trade_no WHERE s.id = ?",
            (ask.sale_id,),
        )
        if sale is None:
            raise RefundRefused(f"no sale {ask.sale_id}")
        if sale["state"] != "paid" or sale["pay"] != "paid":
            raise RefundRefused(f"sale {ask.sale_id} is {sale['state']}, not paid")
        earlier = s.fetchall(
            "SELECT refund_no, amount_fen, state FROM refunds WHERE sale_id = ?", (ask.sale_id,)
        )
        flying = [r["refund_no"] for r in earlier if r["state"] in IN_FLIGHT]
        if flying:
            raise RefundRefused(f"refund {flying[0]} of this sale is still in flight")
        if len(earlier) >= self._config.max_per_sale:
            raise RefundRefused(f"this sale already has {len(earlier)} refunds, the most allowed")
        paid = int(sale["paid_fen"])
        taken = sum(int(r["amount_fen"]) for r in earlier if r["state"] != RefundState.CLOSED)
        left = paid - taken
        lines = self._lines(s, ask, left)
        amount = sum(q * price for _, q, price, _ in lines) if ask.kind == "lines" else left
        if ask.kind == "amount":
            assert ask.amount_fen is not None
            amount = ask.amount_fen
        if amount <= 0 or left <= 0:
            raise RefundRefused("nothing is left to refund on this sale")
        if amount > left:
            raise RefundRefused(
                f"refund of {amount} fen is more than the {left} fen paid and not yet refunded"
            )
        seq = len(earlier) + 1
        refund_no = refund_no_for(ask.sale_id, seq)
        restock = ask.kind != "amount" and ask.reason.value in self._config.restock_reasons
        now = self._store.clock.now()
        s.execute(
            "INSERT INTO refunds (refund_no, sale_id, refund_seq, trade_no, amount_fen, reason, "
            "origin, request_id, state, restock, attempts, next_at, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
            (
                refund_no, ask.sale_id, seq, sale["paid_trade_no"], amount, ask.reason.value,
                ask.origin, ask.request_id, RefundState.REQUESTED.value, int(restock),
                rfc3339(now + timedelta(seconds=delay_after(self._config.query_schedule_s, 1))),
                s.now, s.now,
            ),
        )  # fmt: skip
        s.executemany(
            "INSERT INTO refund_lines (refund_no, line_no, quantity, unit_price_fen) "
            "VALUES (?, ?, ?, ?)",
            [(refund_no, line_no, q, price) for line_no, q, price, _ in lines],
        )
        request = RefundRequest(
            refund_no=refund_no,
            trade_no=sale["paid_trade_no"],
            sale_id=ask.sale_id,
            amount_fen=amount,
            total_fen=paid,
            reason=ask.reason,
            attempt=1,
        )
        self._outbox.write(s, Uplink.PAY, Send.REQUEST.value, dump_body(request))
        s.after.append(
            lambda: log.info(
                "refund requested",
                extra={
                    "refund_no": refund_no,
                    "sale_id": ask.sale_id,
                    "amount_fen": amount,
                    "origin": ask.origin,
                    "reason": ask.reason.value,
                },
            )
        )
        return Started(refund_no, amount, RefundState.REQUESTED.value, False)

    def _lines(self, s: Statements, ask: RefundAsk, left: int) -> list[tuple[int, int, int, str]]:
        """(line_no, quantity, unit_price_fen, barcode) to refund, within what is left."""
        if ask.kind == "amount":
            return []
        sold = {
            int(r["line_no"]): r
            for r in s.fetchall(
                "SELECT l.line_no, l.barcode, l.unit_price_fen, l.quantity - COALESCE(("
                "SELECT SUM(rl.quantity) FROM refund_lines rl JOIN refunds r "
                "ON r.refund_no = rl.refund_no WHERE r.sale_id = l.sale_id "
                "AND rl.line_no = l.line_no AND r.state != 'closed'), 0) AS left_qty "
                "FROM sale_lines l WHERE l.sale_id = ? AND l.voided = 0",
                (ask.sale_id,),
            )
        }
        if ask.kind == "full":
            return [
                (n, int(r["left_qty"]), int(r["unit_price_fen"]), r["barcode"])
                for n, r in sorted(sold.items())
                if int(r["left_qty"]) > 0
            ]
        chosen = []
        for line_no, quantity in ask.lines:
            row = sold.get(line_no)
            if row is None:
                raise RefundRefused(f"sale {ask.sale_id} has no line {line_no}")
            if quantity > int(row["left_qty"]):
                raise RefundRefused(
                    f"line {line_no}: {quantity} asked, {row['left_qty']} left to refund"
                )
            chosen.append((line_no, quantity, int(row["unit_price_fen"]), row["barcode"]))
        return chosen

    # -- the engine ---------------------------------------------------------------------

    async def recover(self) -> None:
        """After a restart every refund in flight is asked about at once."""
        async with self._store.transaction() as tx:
            count = await tx.execute(
                "UPDATE refunds SET next_at = ? WHERE state IN (?, ?)",
                (tx.now, *(s.value for s in IN_FLIGHT)),
            )
        if count:
            log.info("recovering refunds in flight", extra={"open": count})
        self._wake.set()

    async def run(self) -> None:
        await self.recover()
        while True:
            self._wake.clear()
            wait_s = await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_s)

    async def tick(self) -> float:
        """Start refunds for marked sales, send what is due; seconds until the next due."""
        await self._start_marked()
        now = self._store.clock.now()
        due = await self._store.fetchall(
            "SELECT refund_no FROM refunds WHERE next_at IS NOT NULL AND next_at <= ? "
            "ORDER BY next_at",
            (rfc3339(now),),
        )
        for item in due:
            refund_no: str = item["refund_no"]
            async with self._store.transaction() as tx:
                await tx.run(partial(self._due_now, refund_no=refund_no, now=now))
        upcoming = await self._store.fetchone(
            "SELECT MIN(next_at) FROM refunds WHERE next_at IS NOT NULL"
        )
        if upcoming is None or upcoming[0] is None:
            return MARK_POLL_S
        delta = (parse_rfc3339(upcoming[0]) - self._store.clock.now()).total_seconds()
        return min(MARK_POLL_S, max(0.01, delta))

    def _due_now(self, s: Statements, refund_no: str, now: datetime) -> None:
        row = _load(s, refund_no)
        if row is None or row["next_at"] is None or row["next_at"] > s.now:
            return
        step = on_due(RefundState(row["state"]))
        if step is not None:
            self._apply(s, row, step, now)

    async def _start_marked(self) -> None:
        marks = await self._store.fetchall(
            "SELECT sale_id, reason FROM refund_marks WHERE refund_no IS NULL ORDER BY marked_at"
        )
        for mark in marks:
            try:
                reason = RefundReason(mark["reason"])
            except ValueError:
                reason = RefundReason.GOODS_NOT_RELEASED
            ask = RefundAsk(
                mark["sale_id"], "full", reason, "auto", request_id=f"mark-{mark['sale_id']}"
            )
            try:
                async with self._store.transaction() as tx:
                    await tx.run(partial(self._start_mark_now, ask=ask))
            except RefundRefused as exc:
                if "in flight" in str(exc):
                    continue  # the mark waits for the refund in flight to end
                async with self._store.transaction() as tx:
                    await tx.execute(
                        "UPDATE refund_marks SET refund_no = '' WHERE sale_id = ?", (ask.sale_id,)
                    )
                log.error(
                    "sale marked for refund cannot be refunded: staff must look at it",
                    extra={"sale_id": ask.sale_id, "reason": str(exc)},
                )

    def _start_mark_now(self, s: Statements, ask: RefundAsk) -> None:
        started = self.start_now(s, ask)
        s.execute(
            "UPDATE refund_marks SET refund_no = ? WHERE sale_id = ?",
            (started.refund_no, ask.sale_id),
        )

    # -- results ------------------------------------------------------------------------

    async def handle_result(self, envelope: Envelope, tx: Transaction, address: Any) -> None:
        """A verified `refund.result`, inside the inbox transaction: apply it or reject it."""
        try:
            result = envelope_body(envelope, RESULT_TYPE, RefundResult)
        except BodyError as exc:
            self._reject(envelope, str(exc))
        now = self._store.clock.now()

        def check_and_apply(s: Statements) -> None:
            row = _load(s, result.refund_no)
            if row is None:
                self._reject(envelope, "unknown refund number", result.refund_no)
            if result.amount_fen != row["amount_fen"] or result.trade_no != row["trade_no"]:
                self._reject(envelope, "amount or trade does not match", result.refund_no)
            step = on_result(RefundState(row["state"]), result.state)
            if step is None:
                s.after.append(lambda: self.applied.update(ignored=1))
                return
            self._apply(s, row, step, now, result)
            s.after.append(lambda: self._applied(result, step))
            if step.state is RefundState.SUCCEEDED or step.state in ESCALATED:
                self._wake.set()  # a mark waiting for this sale may go now

        tx.defer(check_and_apply)

    def _applied(self, result: RefundResult, step: Step) -> None:
        self.applied[step.state.value] += 1
        level = logging.ERROR if step.state in ESCALATED else logging.INFO
        log.log(
            level,
            "refund escalated to staff and ops: not retried"
            if step.state in ESCALATED
            else "refund result applied",
            extra={
                "refund_no": result.refund_no,
                "result": result.state.value,
                "state": step.state.value,
                "reason": result.reason,
            },
        )

    def _reject(self, envelope: Envelope, reason: str, refund_no: str = "") -> NoReturn:
        self.rejected[reason.split(":")[0]] += 1
        log.warning(
            "refund result rejected",
            extra={"reason": reason, "msg_id": envelope.id, "refund_no": refund_no},
        )
        raise HandlerRejected(reason)

    # -- one step, in the writer thread -------------------------------------------------

    def _apply(
        self,
        s: Statements,
        row: Any,
        step: Step,
        now: datetime,
        result: RefundResult | None = None,
    ) -> None:
        attempts = int(row["attempts"])
        if step.send is not None:
            attempts += 1
            self._send(s, row, step.send, attempts)
        next_at: str | None = None
        if step.state in IN_FLIGHT:
            delay = delay_after(self._config.query_schedule_s, attempts)
            next_at = rfc3339(now + timedelta(seconds=delay))
        s.execute(
            "UPDATE refunds SET state = ?, attempts = ?, next_at = ?, updated_at = ?, "
            "refund_id = CASE WHEN ? = '' THEN refund_id ELSE ? END, "
            "detail = CASE WHEN ? = '' THEN detail ELSE ? END, "
            "succeeded_at = CASE WHEN ? = 'succeeded' THEN ? ELSE succeeded_at END "
            "WHERE refund_no = ?",
            (
                step.state.value, attempts, next_at, s.now,
                result.refund_id if result else "", result.refund_id if result else "",
                result.reason if result else "", result.reason if result else "",
                step.state.value, s.now, row["refund_no"],
            ),
        )  # fmt: skip
        if step.state is RefundState.SUCCEEDED:
            self._succeeded(s, row, result)
        elif step.state in ESCALATED:
            escalated = RefundEscalated.model_validate(
                {
                    "refund_no": row["refund_no"],
                    "sale_id": row["sale_id"],
                    "trade_no": row["trade_no"],
                    "amount_fen": row["amount_fen"],
                    "state": step.state.value,
                    "reason": (result.reason if result else "")[:200],
                }
            )
            self._outbox.write(s, Uplink.PAY, "refund.escalated", dump_body(escalated))

    def _send(self, s: Statements, row: Any, send: Send, attempt: int) -> None:
        if send is Send.REQUEST:
            paid = s.fetchone(
                "SELECT amount_fen FROM payments WHERE trade_no = ?", (row["trade_no"],)
            )
            body: dict[str, Any] = dump_body(
                RefundRequest(
                    refund_no=row["refund_no"],
                    trade_no=row["trade_no"],
                    sale_id=row["sale_id"],
                    amount_fen=row["amount_fen"],
                    total_fen=int(paid["amount_fen"]) if paid else row["amount_fen"],
                    reason=RefundReason(row["reason"]),
                    attempt=attempt,
                )
            )
        else:
            body = dump_body(
                RefundQuery(
                    refund_no=row["refund_no"],
                    trade_no=row["trade_no"],
                    amount_fen=row["amount_fen"],
                    attempt=attempt,
                )
            )
        self._outbox.write(s, Uplink.PAY, send.value, body)

    def _succeeded(self, s: Statements, row: Any, result: RefundResult | None) -> None:
        """Stock back (by reason), the `txn.refunded` record and, at the kiosk, the slip."""
        lines = s.fetchall(
            "SELECT rl.line_no, rl.quantity, rl.unit_price_fen, l.barcode, l.name "
            "FROM refund_lines rl JOIN sale_lines l ON l.sale_id = ? AND l.line_no = rl.line_no "
            "WHERE rl.refund_no = ? ORDER BY rl.line_no",
            (row["sale_id"], row["refund_no"]),
        )
        if row["restock"]:
            s.executemany(
                "UPDATE stock SET quantity = quantity + ?, version = version + 1 WHERE barcode = ?",
                [(int(r["quantity"]), r["barcode"]) for r in lines],
            )
        sale = s.fetchone(
            "SELECT s.seq, s.clock_synced, p.method FROM sales s "
            "JOIN payments p ON p.trade_no = ? WHERE s.id = ?",
            (row["trade_no"], row["sale_id"]),
        )
        assert sale is not None
        body = {
            "sale_id": row["sale_id"],
            "sale_no": int(sale["seq"]),
            "status": "refunded",
            "refund_no": row["refund_no"],
            "refund_seq": int(row["refund_seq"]),
            "trade_no": row["trade_no"],
            "method": sale["method"],
            "currency": "CNY",
            "amount_fen": int(row["amount_fen"]),
            "lines": [
                {
                    "line_no": int(r["line_no"]),
                    "barcode": r["barcode"],
                    "name": r["name"],
                    "unit_price_fen": int(r["unit_price_fen"]),
                    "quantity": int(r["quantity"]),
                    "amount_fen": _fen(r),
                }
                for r in lines
            ],
            "restocked": bool(row["restock"]),
            "reason": row["reason"],
            "origin": row["origin"],
            "refund_id": result.refund_id if result else "",
            "succeeded_at": s.now,
            "clock_synced": self._store.clock.synced() and bool(sale["clock_synced"]),
        }
        self._outbox.write(s, Uplink.TXN, "txn.refunded", body)
        if row["origin"] in SLIP_ORIGINS:
            document = slip_document(
                self._shop_name,
                sale_no=int(sale["seq"]),
                refund_no=row["refund_no"],
                amount_fen=int(row["amount_fen"]),
                lines=[(r["name"], int(r["quantity"]), _fen(r)) for r in lines],
                when=parse_rfc3339(s.now),
            )
            self._print_queue.enqueue_now(s, row["sale_id"], REFUND_SLIP, document)
            s.after.append(self._print_queue.wake)

    # -- status -------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        rows = await self._store.fetchall(
            "SELECT refund_no, sale_id, amount_fen, state, origin, reason, attempts, detail "
            "FROM refunds WHERE state IN (?, ?, ?, ?) ORDER BY created_at",
            (
                RefundState.REQUESTED.value,
                RefundState.PROCESSING.value,
                RefundState.CLOSED.value,
                RefundState.ABNORMAL.value,
            ),
        )
        counts = await self._store.fetchall(
            "SELECT state, COUNT(*) AS n, SUM(amount_fen) AS fen FROM refunds GROUP BY state"
        )
        return {
            "in_flight": [dict(r) for r in rows if r["state"] in IN_FLIGHT],
            "escalated": [dict(r) for r in rows if r["state"] in ESCALATED],
            "by_state": {r["state"]: {"count": r["n"], "fen": r["fen"]} for r in counts},
            "rejected_results": dict(self.rejected),
            "applied_results": dict(self.applied),
        }

    async def refunds_of(self, sale_id: str) -> list[dict[str, Any]]:
        rows = await self._store.fetchall(
            "SELECT refund_no, refund_seq, amount_fen, state, origin, reason, refund_id, "
            "detail FROM refunds WHERE sale_id = ? ORDER BY refund_seq",
            (sale_id,),
        )
        return [dict(r) for r in rows]


def _load(s: Statements, refund_no: str) -> Any:
    return s.fetchone("SELECT * FROM refunds WHERE refund_no = ?", (refund_no,))


def _fen(line: Any) -> int:
    return int(line["unit_price_fen"]) * int(line["quantity"])
