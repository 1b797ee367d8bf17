"""Every body the daemon or the simulated cloud parses rejects junk with BodyError, not a crash."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edged.contract.bodies import MESSAGES, BodyError, PayResult, parse_body
from tests.payments.harness import make_harness

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
near_results = st.fixed_dictionaries(
    {
        "trade_no": st.one_of(st.text(max_size=40), st.just("0190aabbccddeeff0011223344556677")),
        "amount_fen": st.one_of(st.integers(), st.floats(), st.text(max_size=5), st.booleans()),
        "state": st.one_of(st.sampled_from(["SUCCESS", "FAILED", "success", ""]), json_values),
    },
    optional={"reason": json_values, "transaction_id": json_values, "extra": json_values},
)


@pytest.mark.parametrize("type_name", sorted(MESSAGES))
@given(body=st.one_of(json_values, st.dictionaries(st.text(max_size=16), json_values)))
@settings(max_examples=25, deadline=None)
def test_junk_is_rejected_not_crashed(type_name: str, body: Any) -> None:
    model = MESSAGES[type_name][1]
    with contextlib.suppress(BodyError):
        parse_body(model, body)


@given(body=near_results)
@settings(max_examples=150, deadline=None)
def test_pay_results_accept_only_integer_fen_and_known_states(body: dict[str, Any]) -> None:
    try:
        result = parse_body(PayResult, body)
    except BodyError:
        return
    assert type(result.amount_fen) is int and result.amount_fen > 0
    assert result.state.value in {"SUCCESS", "FAILED"}


@given(body=near_results)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_the_downlink_handler_never_crashes_and_never_settles_junk(
    tmp_path: Path, body: dict[str, Any]
) -> None:
    asyncio.run(_deliver_junk(tmp_path / uuid.uuid4().hex, body))


async def _deliver_junk(folder: Path, body: dict[str, Any]) -> None:
    h = await make_harness(folder)
    try:
        await h.new_sale()
        await h.service.pay_by_code("sale-1", 1250, "134567890123456789")
        await h.deliver(h.result(body))
        assert h.sink.settled == []
    finally:
        await h.store.close()
