"""The payment state machines as pure functions: what a result or a due time does to a payment.

Kept free of I/O so every transition can be tested on its own; the service applies a `Step`
inside one transaction (the new state, the outbound request, the settlement) and shows the
progress text only after that transaction committed.

    micropay:  requested ─USERPAYING─► user_paying ─SUCCESS─► paid
                   │ FAILED/REVERSED       │ past deadline / UNKNOWN / shopper cancels
                   ▼                       ▼
                 failed                reversing ─REVERSED / NOT_FOUND─► reversed
                                           ├─SUCCESS (shopper paid first)─► paid
                                           └─unconfirmed past reverse_timeout─► in_doubt
    native QR: native_open ─SUCCESS─► paid;  past expiry / shopper cancels ─► closing
               closing ─CLOSED / NOT_FOUND─► cancelled;  closing ─SUCCESS─► paid
               closing ─unconfirmed past reverse_timeout─► in_doubt
    withdrawn: the kiosk gives up (deadline, expiry, cancel) while its request is still in
               its own outbox, never handed to the broker: the request is deleted in the
               same transaction and the payment ends unpaid at once (`withdraw`).
    in_doubt:  the sale is parked (not paid, nothing released) and the kiosk takes the next
               shopper; the cancel keeps being sent with back-off. REVERSED / CLOSED /
               FAILED / NOT_FOUND ─► reversed or cancelled (no settlement: the sale was
               parked); SUCCESS ─► paid_late: recorded, flagged for refund, releases nothing.

NOT_FOUND is the contract's promise (see `TradeState.NOT_FOUND`): a reverse or close of a
trade the backend does not know closes that trade number, so a request arriving later is
refused. A query answered NOT_FOUND proves nothing yet (the request may be on its way).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from edged.contract.bodies import TradeState
from edged.services.payments.protocol import PaymentOutcome


class PayState(StrEnum):
    REQUESTED = "requested"
    USER_PAYING = "user_paying"
    REVERSING = "reversing"
    NATIVE_OPEN = "native_open"
    CLOSING = "closing"
    PAID = "paid"
    FAILED = "failed"
    REVERSED = "reversed"
    CANCELLED = "cancelled"
    WITHDRAWN = "withdrawn"
    """Ended before its request ever left the kiosk: no money can have moved."""
    IN_DOUBT = "in_doubt"
    """Parked: the cancel was never confirmed; resolved in the background, sale released."""
    PAID_LATE = "paid_late"
    """A SUCCESS for a parked trade: the money moved after the kiosk gave up; refund due."""


FINAL: frozenset[PayState] = frozenset(
    {
        PayState.PAID,
        PayState.FAILED,
        PayState.REVERSED,
        PayState.CANCELLED,
        PayState.WITHDRAWN,
        PayState.PAID_LATE,
    }
)
PARKED: frozenset[PayState] = frozenset({PayState.IN_DOUBT})
"""Not final for the money (the engine keeps resolving it) but no longer the kiosk's: a new
sale may start while a payment is parked."""
REFUND_DUE: frozenset[PayState] = frozenset({PayState.PAID_LATE})
MICROPAY_WAITING: frozenset[PayState] = frozenset({PayState.REQUESTED, PayState.USER_PAYING})
NATIVE: frozenset[PayState] = frozenset({PayState.NATIVE_OPEN, PayState.CLOSING})


class Request(StrEnum):
    """What the kiosk sends on evt/pay as part of a step."""

    QUERY = "pay.query"
    REVERSE = "pay.reverse"
    CLOSE = "pay.close"


MSG_CONFIRM_ON_PHONE = "Please confirm the payment on your phone"
MSG_REVERSING = "Payment not confirmed in time: cancelling it, please wait"
MSG_CHECKING = "Checking the payment with the bank, please wait"
MSG_QR_EXPIRED = "The payment QR code expired: cancelling the order"
MSG_CANCELLING = "Cancelling the payment, please wait"
WITHDRAWN_REASON = "cancelled before it was sent, no money taken"
"""Said once, as the reason the sale went back to the basket."""


@dataclass(frozen=True)
class Step:
    state: PayState
    outcome: PaymentOutcome | None = None
    """Set when the step ends the payment: checkout is told inside the same transaction."""
    send: Request | None = None
    reason: str = ""
    progress: str | None = None
    """Display text shown after the commit."""


def on_result(state: PayState, result: TradeState, reason: str = "") -> Step | None:
    """A verified result for this trade and amount arrived; None means it changes nothing."""
    if state in FINAL:
        return None
    if state is PayState.IN_DOUBT:
        return _resolve_parked(result, reason)
    if result is TradeState.NOT_FOUND:
        return _not_found(state)
    native = state in NATIVE
    if result is TradeState.SUCCESS:
        return Step(PayState.PAID, PaymentOutcome.PAID, reason="paid")
    if result is TradeState.USERPAYING:
        if state is PayState.REQUESTED:
            return Step(PayState.USER_PAYING, progress=MSG_CONFIRM_ON_PHONE)
        return None
    if result is TradeState.NOTPAY:
        return None
    if result is TradeState.UNKNOWN:
        if state in MICROPAY_WAITING:
            return Step(
                PayState.REVERSING,
                send=Request.REVERSE,
                reason="unknown_result",
                progress=MSG_CHECKING,
            )
        return None
    if native:
        return Step(
            PayState.CANCELLED,
            PaymentOutcome.CANCELLED,
            reason=reason or "order closed",
        )
    if result is TradeState.FAILED and state in MICROPAY_WAITING:
        return Step(PayState.FAILED, PaymentOutcome.FAILED, reason=reason or "declined")
    # REVERSED, or FAILED/CLOSED while reversing: the money did not move.
    return Step(PayState.REVERSED, PaymentOutcome.FAILED, reason=reason or "payment reversed")


def on_due(
    state: PayState, now: datetime, deadline: datetime | None, *, native: bool = False
) -> Step | None:
    """The payment's next action time came: query, or give up and reverse/close. A parked
    payment sends its cancel again (a close for a native order)."""
    if state is PayState.IN_DOUBT:
        return Step(state, send=Request.CLOSE if native else Request.REVERSE)
    past = deadline is not None and now >= deadline
    if state in MICROPAY_WAITING:
        if past:
            return Step(
                PayState.REVERSING, send=Request.REVERSE, reason="deadline", progress=MSG_REVERSING
            )
        return Step(state, send=Request.QUERY)
    if state is PayState.REVERSING:
        return Step(state, send=Request.REVERSE)
    if state is PayState.NATIVE_OPEN:
        if past:
            return Step(
                PayState.CLOSING, send=Request.CLOSE, reason="expired", progress=MSG_QR_EXPIRED
            )
        return Step(state, send=Request.QUERY)
    if state is PayState.CLOSING:
        return Step(state, send=Request.CLOSE)
    return None


def on_cancel(state: PayState) -> Step | None:
    """The shopper gave up: close a native order, reverse a micropay still waiting. Asked
    again while the cancel is unconfirmed (staff, `edged cart cancel`), the payment is
    parked at once: nothing was released, and the kiosk is free for the next shopper."""
    if state in (PayState.REVERSING, PayState.CLOSING):
        return on_stuck(state)
    if state is PayState.NATIVE_OPEN:
        return Step(
            PayState.CLOSING,
            send=Request.CLOSE,
            reason="shopper_cancelled",
            progress=MSG_CANCELLING,
        )
    if state in MICROPAY_WAITING:
        return Step(
            PayState.REVERSING,
            send=Request.REVERSE,
            reason="shopper_cancelled",
            progress=MSG_CANCELLING,
        )
    return None


def on_stuck(state: PayState) -> Step | None:
    """The cancel was not confirmed within the reverse timeout: park the payment."""
    if state in (PayState.REVERSING, PayState.CLOSING):
        # The unconfirmed cancel keeps its reason and is re-sent when the parked payment
        # comes due (`on_due`), with back-off.
        return Step(PayState.IN_DOUBT, PaymentOutcome.IN_DOUBT)
    return None


def withdraw(state: PayState) -> Step | None:
    """The kiosk gives up while its request never left: end unpaid, nothing to send. Only
    from a state no answer came in (an answer proves the request arrived)."""
    if state in (PayState.REQUESTED, PayState.NATIVE_OPEN):
        native = state is PayState.NATIVE_OPEN
        outcome = PaymentOutcome.CANCELLED if native else PaymentOutcome.FAILED
        return Step(PayState.WITHDRAWN, outcome, reason=WITHDRAWN_REASON)
    return None


def _not_found(state: PayState) -> Step | None:
    """The backend does not know the trade. Answering a reverse or close, it has closed the
    trade number: the payment ends unpaid. Answering a query, the request may still come."""
    if state is PayState.REVERSING:
        return Step(PayState.REVERSED, PaymentOutcome.FAILED, reason="unknown to the backend")
    if state is PayState.CLOSING:
        return Step(PayState.CANCELLED, PaymentOutcome.CANCELLED, reason="unknown to the backend")
    return None


def _resolve_parked(result: TradeState, reason: str) -> Step | None:
    if result is TradeState.SUCCESS:
        return Step(PayState.PAID_LATE, reason="paid after the kiosk gave up: refund due")
    if result in (TradeState.REVERSED, TradeState.FAILED, TradeState.NOT_FOUND):
        return Step(PayState.REVERSED, reason=reason or result.value.lower())
    if result is TradeState.CLOSED:
        return Step(PayState.CANCELLED, reason=reason or "order closed")
    return None  # USERPAYING, NOTPAY, UNKNOWN: keep trying
