"""What payments sends about a trade after creating it: query, reverse and close requests.

The reverse and close retries back off with the one backoff helper, replayed to the attempt
count the `payments` row keeps, so a restart keeps the schedule.
"""

from __future__ import annotations

from typing import Any

from edged.contract.bodies import Body, CloseRequest, QueryRequest, ReverseRequest, dump_body
from edged.runtime.backoff import Backoff
from edged.services.payments.states import Request

RETRY_MAX_S = 30.0
PARKED_RETRY_MAX_S = 300.0
"""A parked payment's cancel is re-sent at most this far apart."""
REVERSE_REASONS = ("deadline", "unknown_result", "shopper_cancelled")


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
