"""Every transition of the refund state machine, as pure functions."""

from __future__ import annotations

import pytest

from edged.contract.bodies import RefundState as Remote
from edged.services.refunds.service import refund_no_for
from edged.services.refunds.states import RefundState as S
from edged.services.refunds.states import Send, Step, delay_after, on_due, on_result


@pytest.mark.parametrize(
    ("state", "remote", "step"),
    [
        (S.REQUESTED, Remote.PROCESSING, Step(S.PROCESSING)),
        (S.REQUESTED, Remote.SUCCESS, Step(S.SUCCEEDED)),
        (S.REQUESTED, Remote.CLOSED, Step(S.CLOSED)),
        (S.REQUESTED, Remote.ABNORMAL, Step(S.ABNORMAL)),
        (S.REQUESTED, Remote.NOT_FOUND, Step(S.REQUESTED, Send.REQUEST)),
        (S.PROCESSING, Remote.PROCESSING, None),
        (S.PROCESSING, Remote.SUCCESS, Step(S.SUCCEEDED)),
        (S.PROCESSING, Remote.CLOSED, Step(S.CLOSED)),
        (S.PROCESSING, Remote.ABNORMAL, Step(S.ABNORMAL)),
        (S.PROCESSING, Remote.NOT_FOUND, Step(S.REQUESTED, Send.REQUEST)),
        *(
            (final, remote, None)
            for final in (S.SUCCEEDED, S.CLOSED, S.ABNORMAL)
            for remote in Remote
        ),
    ],
)
def test_a_result_moves_a_refund_only_forward(state: S, remote: Remote, step: Step | None) -> None:
    assert on_result(state, remote) == step


def test_a_due_refund_is_asked_for_again_or_queried_and_a_final_one_never() -> None:
    assert on_due(S.REQUESTED) == Step(S.REQUESTED, Send.REQUEST)
    assert on_due(S.PROCESSING) == Step(S.PROCESSING, Send.QUERY)
    assert [on_due(s) for s in (S.SUCCEEDED, S.CLOSED, S.ABNORMAL)] == [None, None, None]


def test_the_query_schedule_follows_the_config_and_then_repeats_its_last_wait() -> None:
    schedule = [60.0, 300.0, 600.0, 1200.0, 1800.0]
    assert [delay_after(schedule, n) for n in range(1, 8)] == [
        60.0, 300.0, 600.0, 1200.0, 1800.0, 1800.0, 1800.0,
    ]  # fmt: skip


def test_the_refund_number_is_the_sale_and_its_refund_sequence() -> None:
    sale = "01936b2e-7c4f-7a8b-9c0d-1e2f3a4b5c6d"
    assert refund_no_for(sale, 1) == "01936b2e7c4f7a8b9c0d1e2f3a4b5R01"
    assert refund_no_for(sale, 50) == "01936b2e7c4f7a8b9c0d1e2f3a4b5R50"
    assert len(refund_no_for(sale, 7)) == 32
