"""The payment state machines as pure functions: what a result or a due time does to a payment.

Kept free of I/O so every transition can be tested on its own; the service applies a `Step`
inside one transaction (the new state, the outbound request, the settlement) and shows the
progress text only after that transaction committed.

    micropay:  requested ─USERPAYING─► user_paying ─SUCCESS─► paid
                   │ FAILED/REVERSED       │ past deadline / UNKNOWN
                   ▼                       ▼
                 failed                reversing ─REVERSED─► reversed
                                           └─SUCCESS (shopper paid first)─► paid
    native QR: native_open ─SUCCESS─► paid;  past expiry / shopper cancels ─► closing
               closing ─CLOSED─► cancelled;  closing ─SUCCESS─► paid
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


FINAL: frozenset[PayState] = frozenset(
    {PayState.PAID, PayState.FAILED, PayState.REVERSED, PayState.CANCELLED}
)
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


def on_due(state: PayState, now: datetime, deadline: datetime | None) -> Step | None:
    """The payment's next action time came: query, or give up and reverse/close."""
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
    """The shopper gave up: close a native order, reverse a micropay still waiting."""
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
