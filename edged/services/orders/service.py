"""Mini-program orders: stored from signed `cmd/order`, collected once by QR or typed code.

`order.created` is stored once per order id (the inbox drops a redelivered envelope; a second
envelope for a known id changes nothing) and reported `received` on `evt/order`, with its pick
ticket queued in the same transaction when the kiosk prints them; a pre-stocked slot order is
`ready` at once, any other becomes ready by staff (`edged order ready ID`).

Pickup works offline. The QR is a signed `order.pickup` envelope (`contract/pickup.py`),
verified with the kiosk's trusted keys, its expiry and its site/device; a 6-digit code is
checked against the stored hash, with code entry locked after 5 wrong codes in 10 minutes.
Redeeming is one transaction: the order `collected`, its stock moved, its `evt/order` report,
and the slot's release (or the counter's collection slip). A refused token or code changes
nothing and says why; a second use says when and where the order was collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edged.contract.bodies import (
    BodyError,
    OrderBody,
    OrderCancelled,
    OrderPlaced,
    OrderStatus,
    PickupToken,
    dump_body,
    envelope_body,
    parse_body,
)
from edged.contract.envelope import Envelope, EnvelopeError, parse_rfc3339, rfc3339
from edged.contract.pickup import PICKUP_TYPE, decode_pickup_token, is_pickup_token
from edged.contract.signing import SignatureError, verify_envelope
from edged.contract.topics import DeviceTopics, Uplink
from edged.link.downlink import HandlerRejected
from edged.services.orders import messages as M
from edged.services.orders import records
from edged.services.orders.records import OPEN, Order
from edged.services.printing.queue import PrintJob, PrintQueue
from edged.store import Statements, Store, Transaction
from edged.store.outbox import Outbox
from hal.display.protocol import Display, show_or_log
from hal.display.view import DisplayView
from hal.printer.document import Columns, PrintDocument, Rule, Text
from hal.scanner.protocol import Scan

if TYPE_CHECKING:  # a kiosk without slots never loads the release service
    from edged.services.release.service import ReleaseService

log = logging.getLogger("edged.orders")

STATUS_TYPE = "order.status"
PICK_TICKET = "pick_ticket"
COLLECTION_SLIP = "collection_slip"
CODE = re.compile(r"^\d{6}$")
MAX_WRONG_CODES = 5
LOCKOUT = timedelta(minutes=10)
REMEMBER_COLLECTED = timedelta(days=30)
"""A code typed again this long after its order was collected still says when and where."""
MAX_EXPIRY_WAIT_S = 60.0


@dataclass(frozen=True)
class PickupOutcome:
    ok: bool
    message: str
    order_id: str | None = None
    reason: str = ""
    """A short machine word: collected, forged, expired, other_device, already_collected, ..."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "message": self.message,
            "order_id": self.order_id,
            "reason": self.reason,
        }


class Refused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class OrdersService:
    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        topics: DeviceTopics,
        trusted: Iterable[Ed25519PublicKey],
        display: Display,
        *,
        print_queue: PrintQueue | None,
        releases: ReleaseService | None,
        slots: int = 0,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._topics = topics
        self._trusted = list(trusted)
        self._display = display
        self._print_queue = print_queue
        self._releases = releases
        self._slots = slots
        self._wake = asyncio.Event()
        self.rejected: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.last_view: DisplayView | None = None
        if print_queue is not None:
            print_queue.add_listener(self)

    # -- cmd/order -----------------------------------------------------------------------

    async def handle_downlink(self, envelope: Envelope, tx: Transaction, address: Any) -> None:
        """A verified cmd/order envelope inside the inbox transaction: apply it or reject it."""
        try:
            if envelope.type in ("order.created", "order.changed"):
                placed = envelope_body(envelope, envelope.type, OrderPlaced)
                self._check_collect(envelope, placed)
                work = self._created if envelope.type == "order.created" else self._changed
                tx.defer(lambda s: work(s, placed))
            elif envelope.type == "order.cancelled":
                cancelled = envelope_body(envelope, envelope.type, OrderCancelled)
                tx.defer(lambda s: self._cancelled(s, cancelled))
            else:
                self._reject(envelope, f"unexpected type {envelope.type!r}")
        except BodyError as exc:
            self._reject(envelope, str(exc))

    def _check_collect(self, envelope: Envelope, placed: OrderPlaced) -> None:
        slot = placed.collect.slot
        if placed.collect.mode == "slot" and (self._releases is None or slot is None):
            self._reject(envelope, "slot pickup at a device without slots")
        if slot is not None and slot > self._slots:
            self._reject(envelope, f"slot {slot} does not exist (this device has 1-{self._slots})")

    def _reject(self, envelope: Envelope, reason: str) -> NoReturn:
        self.rejected[reason.split(":")[0]] += 1
        log.warning("order message rejected", extra={"reason": reason, "msg_id": envelope.id})
        raise HandlerRejected(reason)

    def _created(self, s: Statements, placed: OrderPlaced) -> None:
        if not records.insert_now(s, placed):
            s.after.append(lambda: self.rejected.update(duplicate=1))
            return  # a second order.created for a known order changes nothing
        self._report_now(s, placed.order_id, OrderStatus.RECEIVED)
        if placed.collect.prestocked:
            records.move_now(s, placed.order_id, OrderStatus.READY, only_from=OPEN)
            self._report_now(s, placed.order_id, OrderStatus.READY, reason="pre-stocked slot")
        if self._print_queue is not None:
            job = self._print_queue.enqueue_now(s, None, PICK_TICKET, pick_ticket(placed))
            s.execute("UPDATE orders SET ticket_job = ? WHERE id = ?", (job, placed.order_id))
            s.after.append(self._print_queue.wake)
        s.after.append(self._wake.set)

    def _changed(self, s: Statements, placed: OrderPlaced) -> None:
        if records.replace_now(s, placed):
            order = records.load_now(s, placed.order_id)
            assert order is not None
            self._report_now(s, order.id, order.state, reason="changed")
            s.after.append(self._wake.set)
        else:
            s.after.append(lambda: self.rejected.update(not_open=1))

    def _cancelled(self, s: Statements, cancelled: OrderCancelled) -> None:
        order_id = cancelled.order_id
        if records.move_now(
            s, order_id, OrderStatus.CANCELLED, only_from=OPEN, reason=cancelled.reason
        ):
            self._report_now(s, order_id, OrderStatus.CANCELLED, reason=cancelled.reason)

    # -- pickup --------------------------------------------------------------------------

    async def handle_scan(self, scan: Scan) -> None:
        """Registered with the scan dispatch: only pickup QR codes are ours."""
        if is_pickup_token(scan.text):
            await self.pickup_by_token(scan.text)

    async def pickup_by_token(self, text: str) -> PickupOutcome:
        try:
            order_id, token_id = self._check_token(text)
        except Refused as exc:
            return await self._refused(exc)
        async with self._store.transaction() as tx:
            outcome = await tx.run(lambda s: self._redeem_now(s, order_id, "qr", token_id))
        return await self._told(outcome)

    def _check_token(self, text: str) -> tuple[str, str]:
        try:
            envelope = decode_pickup_token(text)
        except EnvelopeError:
            raise Refused("forged", M.FORGED) from None
        if envelope.type != PICKUP_TYPE:
            raise Refused("forged", M.FORGED)
        try:
            verify_envelope(envelope, self._trusted)
        except SignatureError:
            raise Refused("forged", M.FORGED) from None
        try:
            token = parse_body(PickupToken, envelope.body)
        except BodyError:
            raise Refused("forged", M.FORGED) from None
        expires = envelope.expires_at()
        if expires is None or self._store.clock.now() >= expires:
            raise Refused("expired", M.EXPIRED)
        if (token.site, token.device) != (self._topics.site, self._topics.device):
            raise Refused("other_device", M.OTHER_DEVICE)
        return token.order_id, envelope.id

    async def pickup_by_code(self, code: str) -> PickupOutcome:
        if not isinstance(code, str) or not CODE.match(code):
            return await self._refused(Refused("format", M.CODE_FORMAT))
        async with self._store.transaction() as tx:
            outcome = await tx.run(lambda s: self._code_now(s, code))
        return await self._told(outcome)

    def _code_now(self, s: Statements, code: str) -> PickupOutcome:
        now = parse_rfc3339(s.now)
        locked_until = self._locked_until_now(s, now)
        if locked_until is not None:
            return self._lockout(locked_until)
        since = rfc3339(now - REMEMBER_COLLECTED)
        marks = ",".join("?" * len(OPEN))
        rows = s.fetchall(  # open orders, and recent ended ones so a code says what became of it
            f"SELECT id, code_hash FROM orders WHERE state IN ({marks}) OR updated_at >= ?",
            (*(state.value for state in OPEN), since),
        )
        match = next(
            (
                row["id"]
                for row in rows
                if hmac.compare_digest(records.code_hash(row["id"], code), row["code_hash"])
            ),
            None,
        )
        s.execute(
            "INSERT INTO pickup_attempts (at, ok) VALUES (?, ?)", (s.now, int(match is not None))
        )
        if match is not None:
            return self._redeem_now(s, match, "code", None)
        locked_until = self._locked_until_now(s, now)
        if locked_until is not None:
            return self._lockout(locked_until)
        wrong = self._wrong_codes_now(s, now)
        left = MAX_WRONG_CODES - len(wrong)
        return PickupOutcome(False, M.WRONG_CODE.format(left=left), reason="wrong_code")

    def _wrong_codes_now(self, s: Statements, now: datetime) -> list[str]:
        rows = s.fetchall(
            "SELECT at FROM pickup_attempts WHERE ok = 0 AND at > ? ORDER BY id DESC LIMIT ?",
            (rfc3339(now - LOCKOUT), MAX_WRONG_CODES),
        )
        return [row["at"] for row in rows]

    def _locked_until_now(self, s: Statements, now: datetime) -> datetime | None:
        wrong = self._wrong_codes_now(s, now)
        if len(wrong) < MAX_WRONG_CODES:
            return None
        return parse_rfc3339(wrong[-1]) + LOCKOUT

    def _lockout(self, until: datetime) -> PickupOutcome:
        local = until.astimezone()
        return PickupOutcome(False, M.LOCKED.format(until=f"{local:%H:%M}"), reason="locked")

    def _redeem_now(
        self, s: Statements, order_id: str, how: str, token_id: str | None
    ) -> PickupOutcome:
        order = records.load_now(s, order_id)
        if order is None:
            return PickupOutcome(False, M.UNKNOWN_ORDER, order_id, "unknown_order")
        if order.state is OrderStatus.COLLECTED:
            return PickupOutcome(False, self._already(order), order_id, "already_collected")
        if order.state not in OPEN:
            message = M.ORDER_CLOSED.format(state=order.state.value)
            return PickupOutcome(False, message, order_id, order.state.value)
        if s.now >= order.expires_at:
            return PickupOutcome(False, M.EXPIRED, order_id, "expired")
        if order.state is not OrderStatus.READY:
            return PickupOutcome(False, M.NOT_READY, order_id, "not_ready")
        s.execute(
            "UPDATE orders SET state = ?, collected_at = ?, collected_by = ?, token_id = ?, "
            "updated_at = ? WHERE id = ? AND state = ?",
            (
                OrderStatus.COLLECTED.value,
                s.now,
                how,
                token_id,
                s.now,
                order.id,
                OrderStatus.READY.value,
            ),
        )
        s.executemany(
            "UPDATE stock SET quantity = quantity - ?, version = version + 1 WHERE barcode = ?",
            [(line.quantity, line.barcode) for line in order.lines],
        )
        self._report_now(s, order.id, OrderStatus.COLLECTED, collected_by=how)
        if order.collect_mode == "slot" and order.slot is not None and self._releases is not None:
            self._releases.order_collected_now(s, order.id, order.slot)
            message = M.COLLECTED_SLOT.format(slot=order.slot)
        else:
            if self._print_queue is not None:
                self._print_queue.enqueue_now(
                    s, None, COLLECTION_SLIP, collection_slip(order, self._topics.device, s.now)
                )
            message = M.COLLECTED_COUNTER
        log.info("order collected", extra={"order_id": order.id, "by": how})
        return PickupOutcome(True, message, order.id, "collected")

    def _already(self, order: Order) -> str:
        when = "?"
        if order.collected_at:
            when = f"{parse_rfc3339(order.collected_at).astimezone():%Y-%m-%d %H:%M}"
        where = self._topics.device
        where += f" slot {order.slot}" if order.collect_mode == "slot" else " counter"
        return M.ALREADY_COLLECTED.format(when=when, where=where)

    async def _refused(self, exc: Refused) -> PickupOutcome:
        return await self._told(PickupOutcome(False, exc.message, reason=exc.reason))

    async def _told(self, outcome: PickupOutcome) -> PickupOutcome:
        """After the redeeming transaction committed (never inside it): the print worker reads
        committed jobs only, so it is woken now."""
        if outcome.ok and self._print_queue is not None:
            self._print_queue.wake()
        if not outcome.ok:
            self.refused[outcome.reason] += 1
            log.info(
                "pickup refused", extra={"reason": outcome.reason, "order_id": outcome.order_id}
            )
        await self._show(outcome.message, "ok" if outcome.ok else "warn")
        return outcome

    # -- staff, expiry, pick tickets --------------------------------------------------------

    async def mark_ready(self, order_id: str) -> bool:
        def ready(s: Statements) -> bool:
            moved = records.move_now(
                s,
                order_id,
                OrderStatus.READY,
                only_from=(OrderStatus.RECEIVED, OrderStatus.TICKET_PRINTED),
            )
            if moved:
                self._report_now(s, order_id, OrderStatus.READY, reason="prepared by staff")
            return moved

        async with self._store.transaction() as tx:
            return await tx.run(ready)

    async def run(self) -> None:
        """Expire orders whose pickup credential ran out; sleeps until the next expiry."""
        while True:
            self._wake.clear()
            wait_s = await self.expire_due()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._wake.wait()

    async def expire_due(self) -> float:
        def expire(s: Statements) -> str | None:
            marks = ",".join("?" * len(OPEN))
            states = tuple(state.value for state in OPEN)
            due = s.fetchall(
                f"SELECT id FROM orders WHERE state IN ({marks}) AND expires_at <= ?",
                (*states, s.now),
            )
            for row in due:
                if records.move_now(s, row["id"], OrderStatus.EXPIRED, only_from=OPEN):
                    self._report_now(s, row["id"], OrderStatus.EXPIRED)
            upcoming = s.fetchone(
                f"SELECT MIN(expires_at) FROM orders WHERE state IN ({marks})", states
            )
            return None if upcoming is None else upcoming[0]

        async with self._store.transaction() as tx:
            upcoming = await tx.run(expire)
        if upcoming is None:
            return MAX_EXPIRY_WAIT_S
        delta = (parse_rfc3339(upcoming) - self._store.clock.now()).total_seconds()
        return min(MAX_EXPIRY_WAIT_S, max(0.05, delta))

    async def job_printing(self, job: PrintJob) -> None:
        return None

    async def job_blocked(self, job: PrintJob, problem: str) -> None:
        return None

    async def job_printed(self, job: PrintJob) -> None:
        if job.kind != PICK_TICKET:
            return
        try:
            await self._ticket_printed(job)
        except Exception as exc:  # the queue must go on; the order stays `received`
            log.warning("ticket status not recorded", extra={"job": job.id, "reason": repr(exc)})

    async def _ticket_printed(self, job: PrintJob) -> None:
        def printed(s: Statements) -> None:
            row = s.fetchone("SELECT id FROM orders WHERE ticket_job = ?", (job.id,))
            if row is not None and records.move_now(
                s, row["id"], OrderStatus.TICKET_PRINTED, only_from=(OrderStatus.RECEIVED,)
            ):
                self._report_now(s, row["id"], OrderStatus.TICKET_PRINTED)

        async with self._store.transaction() as tx:
            await tx.run(printed)

    # -- shared ----------------------------------------------------------------------------

    def _report_now(
        self,
        s: Statements,
        order_id: str,
        status: OrderStatus,
        *,
        reason: str = "",
        collected_by: str | None = None,
    ) -> None:
        body = OrderBody.model_validate(
            {
                "order_id": order_id,
                "status": status,
                "reason": reason,
                "at": s.now,
                "collected_by": collected_by,
            }
        )
        self._outbox.write(s, Uplink.ORDER, STATUS_TYPE, dump_body(body))

    async def _show(self, headline: str, tone: str) -> None:
        view = DisplayView(headline=headline, tone=tone)
        self.last_view = view
        await show_or_log(self._display, view, log)

    async def status(self) -> dict[str, Any]:
        rows = await self._store.fetchall(
            "SELECT state, COUNT(*) AS n FROM orders GROUP BY state ORDER BY state"
        )
        recent = await self._store.fetchall(
            "SELECT id, state, collect_mode, slot, expires_at, collected_at, collected_by "
            "FROM orders ORDER BY updated_at DESC, rowid DESC LIMIT 10"
        )
        return {
            "by_state": {row["state"]: row["n"] for row in rows},
            "recent": [dict(row) for row in recent],
            "rejected_messages": dict(self.rejected),
            "refused_pickups": dict(self.refused),
            "display": None if self.last_view is None else self.last_view.model_dump(),
        }


def pick_ticket(placed: OrderPlaced) -> PrintDocument:
    """For staff preparing the order (GB18030 on the printer, like every receipt)."""
    where = (
        M.COUNTER if placed.collect.mode == "counter" else M.SLOT.format(slot=placed.collect.slot)
    )
    blocks: list[Text | Columns | Rule] = [
        Text(text=M.TICKET_TITLE, align="center", bold=True, large=True),
        Text(text=M.ORDER_NO.format(order_id=placed.order_id), align="center"),
        Text(text=where, align="center", bold=True),
        Rule(),
    ]
    blocks += [Columns(left=line.name, right=f"x{line.quantity}") for line in placed.lines]
    blocks += [Rule(), Text(text=M.PAID_ONLINE.format(amount=yuan(placed.paid_fen)))]
    return PrintDocument(blocks=blocks)


def yuan(fen: int) -> str:
    return f"¥{fen // 100}.{fen % 100:02d}"


def collection_slip(order: Order, device: str, now: str) -> PrintDocument:
    """Handed over at the counter: staff give the goods against it."""
    when = f"{parse_rfc3339(now).astimezone():%Y-%m-%d %H:%M:%S}"
    blocks: list[Text | Columns | Rule] = [
        Text(text=M.SLIP_TITLE, align="center", bold=True, large=True),
        Text(text=M.ORDER_NO.format(order_id=order.id), align="center"),
        Text(text=M.COLLECTED_AT.format(when=when)),
        Text(text=device),
        Rule(),
    ]
    blocks += [Columns(left=line.name, right=f"x{line.quantity}") for line in order.lines]
    return PrintDocument(blocks=blocks)
