"""Every payment transition, as a table: each state meeting each result, due time and cancel.

The tables name every state and every result explicitly; a test fails when a state or a
result is added and the table does not say what it does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edged.contract.bodies import TradeState
from edged.services.payments.protocol import PaymentOutcome
from edged.services.payments.states import (
    FINAL,
    MICROPAY_WAITING,
    MSG_CANCELLING,
    MSG_CHECKING,
    MSG_CONFIRM_ON_PHONE,
    MSG_QR_EXPIRED,
    MSG_REVERSING,
    NATIVE,
    PARKED,
    WITHDRAWN_REASON,
    PayState,
    Request,
    Step,
    on_cancel,
    on_due,
    on_result,
    on_stuck,
    withdraw,
)

S = PayState
T = TradeState
BANK = "card frozen by the bank"
"""A reason the backend sent with the result."""

PAID = Step(S.PAID, PaymentOutcome.PAID, reason="paid")


def declined(reason: str) -> Step:
    return Step(S.FAILED, PaymentOutcome.FAILED, reason=reason)


def reversed_(reason: str) -> Step:
    return Step(S.REVERSED, PaymentOutcome.FAILED, reason=reason)


def cancelled(reason: str) -> Step:
    return Step(S.CANCELLED, PaymentOutcome.CANCELLED, reason=reason)


PARK = Step(S.IN_DOUBT, PaymentOutcome.IN_DOUBT)
"""The sale is parked (settled as in doubt, nothing released); the cancel keeps going."""
LATE = Step(S.PAID_LATE, reason="paid after the kiosk gave up: refund due")
"""Recorded and flagged for refund; no outcome: the parked sale is never settled again."""


def quietly(state: PayState, reason: str) -> Step:
    """A parked payment resolved unpaid: recorded, no settlement (the sale was parked)."""
    return Step(state, reason=reason)


NOT_KNOWN = "unknown to the backend"
CONFIRMING = Step(S.USER_PAYING, progress=MSG_CONFIRM_ON_PHONE)
CHECK_BY_REVERSING = Step(
    S.REVERSING, send=Request.REVERSE, reason="unknown_result", progress=MSG_CHECKING
)

# (state, result): (the step with no reason from the backend, the step with reason BANK)
ON_RESULT: dict[tuple[PayState, TradeState], tuple[Step | None, Step | None]] = {
    # A micropay waiting for the backend's answer.
    (S.REQUESTED, T.SUCCESS): (PAID, PAID),
    (S.REQUESTED, T.USERPAYING): (CONFIRMING, CONFIRMING),
    (S.REQUESTED, T.NOTPAY): (None, None),
    (S.REQUESTED, T.FAILED): (declined("declined"), declined(BANK)),
    (S.REQUESTED, T.REVERSED): (reversed_("payment reversed"), reversed_(BANK)),
    (S.REQUESTED, T.CLOSED): (reversed_("payment reversed"), reversed_(BANK)),
    (S.REQUESTED, T.UNKNOWN): (CHECK_BY_REVERSING, CHECK_BY_REVERSING),
    # A query answered NOT_FOUND: the request may still be on its way; nothing changes.
    (S.REQUESTED, T.NOT_FOUND): (None, None),
    # The shopper is confirming on the phone.
    (S.USER_PAYING, T.SUCCESS): (PAID, PAID),
    (S.USER_PAYING, T.USERPAYING): (None, None),
    (S.USER_PAYING, T.NOTPAY): (None, None),
    (S.USER_PAYING, T.FAILED): (declined("declined"), declined(BANK)),
    (S.USER_PAYING, T.REVERSED): (reversed_("payment reversed"), reversed_(BANK)),
    (S.USER_PAYING, T.CLOSED): (reversed_("payment reversed"), reversed_(BANK)),
    (S.USER_PAYING, T.UNKNOWN): (CHECK_BY_REVERSING, CHECK_BY_REVERSING),
    (S.USER_PAYING, T.NOT_FOUND): (None, None),
    # Reversing: a SUCCESS means the shopper paid first; any "no money moved" ends it unpaid.
    (S.REVERSING, T.SUCCESS): (PAID, PAID),
    (S.REVERSING, T.USERPAYING): (None, None),
    (S.REVERSING, T.NOTPAY): (None, None),
    (S.REVERSING, T.FAILED): (reversed_("payment reversed"), reversed_(BANK)),
    (S.REVERSING, T.REVERSED): (reversed_("payment reversed"), reversed_(BANK)),
    (S.REVERSING, T.CLOSED): (reversed_("payment reversed"), reversed_(BANK)),
    (S.REVERSING, T.UNKNOWN): (None, None),
    # NOT_FOUND to a reverse: the backend closed the unknown trade number, it ends unpaid.
    (S.REVERSING, T.NOT_FOUND): (reversed_(NOT_KNOWN), reversed_(NOT_KNOWN)),
    # A native order waiting to be paid in the mini-program.
    (S.NATIVE_OPEN, T.SUCCESS): (PAID, PAID),
    (S.NATIVE_OPEN, T.USERPAYING): (None, None),
    (S.NATIVE_OPEN, T.NOTPAY): (None, None),
    (S.NATIVE_OPEN, T.FAILED): (cancelled("order closed"), cancelled(BANK)),
    (S.NATIVE_OPEN, T.REVERSED): (cancelled("order closed"), cancelled(BANK)),
    (S.NATIVE_OPEN, T.CLOSED): (cancelled("order closed"), cancelled(BANK)),
    (S.NATIVE_OPEN, T.UNKNOWN): (None, None),
    (S.NATIVE_OPEN, T.NOT_FOUND): (None, None),
    # Closing a native order: paid before the close, or closed.
    (S.CLOSING, T.SUCCESS): (PAID, PAID),
    (S.CLOSING, T.USERPAYING): (None, None),
    (S.CLOSING, T.NOTPAY): (None, None),
    (S.CLOSING, T.FAILED): (cancelled("order closed"), cancelled(BANK)),
    (S.CLOSING, T.REVERSED): (cancelled("order closed"), cancelled(BANK)),
    (S.CLOSING, T.CLOSED): (cancelled("order closed"), cancelled(BANK)),
    (S.CLOSING, T.UNKNOWN): (None, None),
    (S.CLOSING, T.NOT_FOUND): (cancelled(NOT_KNOWN), cancelled(NOT_KNOWN)),
    # Parked: a SUCCESS is recorded for refund, never released; "no money moved" ends it.
    (S.IN_DOUBT, T.SUCCESS): (LATE, LATE),
    (S.IN_DOUBT, T.USERPAYING): (None, None),
    (S.IN_DOUBT, T.NOTPAY): (None, None),
    (S.IN_DOUBT, T.FAILED): (quietly(S.REVERSED, "failed"), quietly(S.REVERSED, BANK)),
    (S.IN_DOUBT, T.REVERSED): (quietly(S.REVERSED, "reversed"), quietly(S.REVERSED, BANK)),
    (S.IN_DOUBT, T.CLOSED): (quietly(S.CANCELLED, "order closed"), quietly(S.CANCELLED, BANK)),
    (S.IN_DOUBT, T.UNKNOWN): (None, None),
    (S.IN_DOUBT, T.NOT_FOUND): (quietly(S.REVERSED, "not_found"), quietly(S.REVERSED, BANK)),
    # A final state never changes again, whatever arrives (a late SUCCESS is the backend's
    # refund to make, logged by the service).
    **{(final, result): (None, None) for final in FINAL for result in TradeState},
}

NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)
DEADLINES = {
    "no-deadline": None,
    "a-second-ahead": NOW + timedelta(seconds=1),
    "exactly-now": NOW,
    "a-second-ago": NOW - timedelta(seconds=1),
}
REVERSE_ON_DEADLINE = Step(
    S.REVERSING, send=Request.REVERSE, reason="deadline", progress=MSG_REVERSING
)
CLOSE_ON_EXPIRY = Step(S.CLOSING, send=Request.CLOSE, reason="expired", progress=MSG_QR_EXPIRED)


def _due(
    state: PayState, query: Step | None, past: Step | None
) -> dict[tuple[PayState, str], Step | None]:
    return {
        (state, "no-deadline"): query,
        (state, "a-second-ahead"): query,
        (state, "exactly-now"): past,
        (state, "a-second-ago"): past,
    }


ON_DUE: dict[tuple[PayState, str], Step | None] = {
    **_due(S.REQUESTED, Step(S.REQUESTED, send=Request.QUERY), REVERSE_ON_DEADLINE),
    **_due(S.USER_PAYING, Step(S.USER_PAYING, send=Request.QUERY), REVERSE_ON_DEADLINE),
    # An unanswered reverse or close is sent again, deadline or not: it is the only way out.
    **_due(
        S.REVERSING,
        Step(S.REVERSING, send=Request.REVERSE),
        Step(S.REVERSING, send=Request.REVERSE),
    ),
    **_due(S.NATIVE_OPEN, Step(S.NATIVE_OPEN, send=Request.QUERY), CLOSE_ON_EXPIRY),
    **_due(S.CLOSING, Step(S.CLOSING, send=Request.CLOSE), Step(S.CLOSING, send=Request.CLOSE)),
    # Parked: the cancel is sent again whenever it comes due (a micropay's: a reverse).
    **_due(
        S.IN_DOUBT,
        Step(S.IN_DOUBT, send=Request.REVERSE),
        Step(S.IN_DOUBT, send=Request.REVERSE),
    ),
    **{key: None for final in FINAL for key in _due(final, None, None)},
}

ON_CANCEL: dict[PayState, Step | None] = {
    S.REQUESTED: Step(
        S.REVERSING, send=Request.REVERSE, reason="shopper_cancelled", progress=MSG_CANCELLING
    ),
    S.USER_PAYING: Step(
        S.REVERSING, send=Request.REVERSE, reason="shopper_cancelled", progress=MSG_CANCELLING
    ),
    # Asked again while the cancel is unconfirmed (staff's way out): parked at once.
    S.REVERSING: PARK,
    S.NATIVE_OPEN: Step(
        S.CLOSING, send=Request.CLOSE, reason="shopper_cancelled", progress=MSG_CANCELLING
    ),
    S.CLOSING: PARK,
    S.IN_DOUBT: None,  # already parked
    **{final: None for final in FINAL},
}


def test_the_tables_name_every_state_and_every_result() -> None:
    assert set(ON_RESULT) == {(s, r) for s in PayState for r in TradeState}
    assert set(ON_DUE) == {(s, d) for s in PayState for d in DEADLINES}
    assert set(ON_CANCEL) == set(PayState)
    assert {S.REQUESTED, S.USER_PAYING} == MICROPAY_WAITING
    assert {S.NATIVE_OPEN, S.CLOSING} == NATIVE
    assert {
        S.PAID,
        S.FAILED,
        S.REVERSED,
        S.CANCELLED,
        S.WITHDRAWN,
        S.PAID_LATE,
    } == FINAL
    assert {S.IN_DOUBT} == PARKED


@pytest.mark.parametrize(("state", "result"), list(ON_RESULT), ids=lambda v: str(v))
def test_on_result(state: PayState, result: TradeState) -> None:
    without_reason, with_reason = ON_RESULT[(state, result)]
    assert on_result(state, result) == without_reason
    assert on_result(state, result, "") == without_reason
    assert on_result(state, result, BANK) == with_reason


@pytest.mark.parametrize(("state", "deadline"), list(ON_DUE), ids=lambda v: str(v))
def test_on_due(state: PayState, deadline: str) -> None:
    assert on_due(state, NOW, DEADLINES[deadline]) == ON_DUE[(state, deadline)]


@pytest.mark.parametrize("state", list(ON_CANCEL), ids=lambda v: str(v))
def test_on_cancel(state: PayState) -> None:
    assert on_cancel(state) == ON_CANCEL[state]


def test_a_parked_payment_sends_a_close_when_it_is_a_native_order() -> None:
    for deadline in DEADLINES.values():
        assert on_due(S.IN_DOUBT, NOW, deadline, native=True) == Step(
            S.IN_DOUBT, send=Request.CLOSE
        )


ON_STUCK: dict[PayState, Step | None] = {
    S.REVERSING: PARK,
    S.CLOSING: PARK,
    **{s: None for s in PayState if s not in (S.REVERSING, S.CLOSING)},
}
ON_WITHDRAW: dict[PayState, Step | None] = {
    # Only where no answer ever came: an answer proves the request arrived.
    S.REQUESTED: Step(S.WITHDRAWN, PaymentOutcome.FAILED, reason=WITHDRAWN_REASON),
    S.NATIVE_OPEN: Step(S.WITHDRAWN, PaymentOutcome.CANCELLED, reason=WITHDRAWN_REASON),
    **{s: None for s in PayState if s not in (S.REQUESTED, S.NATIVE_OPEN)},
}


@pytest.mark.parametrize("state", list(PayState), ids=str)
def test_on_stuck_parks_only_an_unconfirmed_cancel(state: PayState) -> None:
    assert on_stuck(state) == ON_STUCK[state]


@pytest.mark.parametrize("state", list(PayState), ids=str)
def test_withdraw_only_before_any_answer(state: PayState) -> None:
    assert withdraw(state) == ON_WITHDRAW[state]


def test_a_step_that_ends_the_payment_tells_checkout_and_only_then() -> None:
    """Outcome set exactly when the kiosk is done with the sale: a final state, or parking,
    reached from a kiosk state (checkout settles in that transaction). A parked payment's
    later steps settle nothing: its sale was settled (parked) already."""
    steps: list[tuple[PayState, Step | None]] = [
        *((state, step) for (state, _), pair in ON_RESULT.items() for step in pair),
        *((state, step) for (state, _), step in ON_DUE.items()),
        *ON_CANCEL.items(),
        *ON_STUCK.items(),
        *ON_WITHDRAW.items(),
    ]
    for state, step in steps:
        if step is not None:
            ends = (step.state in FINAL or step.state in PARKED) and state not in PARKED
            assert (step.outcome is not None) == ends, (state, step)
