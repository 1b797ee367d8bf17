"""The refund state machine as pure functions: what a result or a due time does to a refund.

requested ─PROCESSING─► processing ─SUCCESS─► succeeded
    │  └──────────────SUCCESS─────────────────┘
    ├─CLOSED / ABNORMAL─► closed / abnormal   (escalated to staff and ops; never retried)
    └─ due: the request again (same refund number, so the channel refunds once)
processing ─ due: a query, on the configured schedule;  NOT_FOUND ─► requested (resent)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from edged.contract.bodies import RefundState as Remote


class RefundState(StrEnum):
    REQUESTED = "requested"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    CLOSED = "closed"
    ABNORMAL = "abnormal"


IN_FLIGHT: frozenset[RefundState] = frozenset({RefundState.REQUESTED, RefundState.PROCESSING})
ESCALATED: frozenset[RefundState] = frozenset({RefundState.CLOSED, RefundState.ABNORMAL})
FINAL: frozenset[RefundState] = frozenset({RefundState.SUCCEEDED, *ESCALATED})


class Send(StrEnum):
    """What the device sends on evt/pay as part of a step."""

    REQUEST = "refund.request"
    QUERY = "refund.query"


@dataclass(frozen=True)
class Step:
    state: RefundState
    send: Send | None = None


def on_result(state: RefundState, remote: Remote) -> Step | None:
    """A verified result for this refund and amount; None means it changes nothing."""
    if state in FINAL:
        return None
    if remote is Remote.SUCCESS:
        return Step(RefundState.SUCCEEDED)
    if remote is Remote.CLOSED:
        return Step(RefundState.CLOSED)
    if remote is Remote.ABNORMAL:
        return Step(RefundState.ABNORMAL)
    if remote is Remote.NOT_FOUND:
        return Step(RefundState.REQUESTED, Send.REQUEST)
    if state is RefundState.REQUESTED:  # PROCESSING
        return Step(RefundState.PROCESSING)
    return None


def on_due(state: RefundState) -> Step | None:
    """The refund's next action time came: ask again (requested) or query (processing)."""
    if state is RefundState.REQUESTED:
        return Step(state, Send.REQUEST)
    if state is RefundState.PROCESSING:
        return Step(state, Send.QUERY)
    return None


def delay_after(schedule: list[float], sends: int) -> float:
    """Seconds to wait after the `sends`-th message; past the schedule's end its last entry
    repeats (WeChat Pay's guidance: query after 1, 5, 10, 20, 30 minutes)."""
    return schedule[min(max(sends, 1), len(schedule)) - 1]
