"""Refunds end to end: real Mosquitto, the daemon as a process, the simulated cloud.

A paid sale of water (200), cola (350) and noodles (450) = 1000 fen is refunded by a signed
`op.refund` on cmd/op (in full, by lines, by an amount) or by the technician; the cloud
refunds each refund number at most once, and the kiosk never refunds more than was paid.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from edged.cloudsim.keys import ensure_keys
from edged.cloudsim.scenarios import RefundScenario
from edged.contract.envelope import make_envelope
from edged.contract.signing import sign_envelope
from edged.contract.topics import DeviceTopics, Downlink
from tests.e2e.kiosk import ITEMS, Kiosk, code
from tests.link.helpers import Observer
from tests.refunds.conftest import TECHNICIAN_TOKEN

TOPICS = DeviceTopics("e2e", "kiosk-1")
WATER, COLA, NOODLES = ITEMS


def sell(kiosk: Kiosk) -> str:
    """One paid sale of the three items (1000 fen); returns its id."""
    kiosk.fill_basket()
    kiosk.scan(code("89"))
    kiosk.wait_settled()
    [row] = kiosk.rows("SELECT id FROM sales WHERE state = 'paid' ORDER BY seq DESC LIMIT 1")
    return str(row["id"])


def refund_op(kiosk: Kiosk, body: dict[str, Any], envelope_id: str | None = None) -> bytes:
    """A signed `op.refund` as the backend sends it; published, and returned for replays."""
    envelope = make_envelope(
        type="op.refund",
        device=TOPICS.device,
        seq=1,
        body=body,
        now=datetime.now(UTC),
        clock_synced=True,
        ttl=timedelta(seconds=60),
        id=envelope_id,
    )
    payload = sign_envelope(envelope, ensure_keys(kiosk.data / "cloudsim").signing).to_bytes()
    kiosk.sim.publish(TOPICS.downlink(Downlink.OP), payload)
    return payload


def replies(uplink: Observer, request_id: str) -> list[dict[str, Any]]:
    return [
        json.loads(m.payload)["body"]
        for m in uplink.snapshot()
        if m.topic == f"{TOPICS.root}/rsp/{request_id}"
    ]


def txns(uplink: Observer, type_name: str) -> list[dict[str, Any]]:
    found = []
    for m in uplink.snapshot():
        if m.topic == f"{TOPICS.root}/evt/txn":
            envelope = json.loads(m.payload)
            if envelope["type"] == type_name:
                found.append(envelope["body"])
    return found


def refund_rows(kiosk: Kiosk, sale_id: str) -> list[dict[str, Any]]:
    return kiosk.rows(
        "SELECT refund_no, refund_seq, amount_fen, state, origin, reason FROM refunds "
        f"WHERE sale_id = '{sale_id}' ORDER BY refund_seq"
    )


def stock(kiosk: Kiosk, barcode: str) -> int:
    [row] = kiosk.rows(f"SELECT quantity FROM stock WHERE barcode = '{barcode}'")
    return int(row["quantity"])


def wait_refund_state(
    kiosk: Kiosk, sale_id: str, seq: int, state: str, timeout: float = 15
) -> None:
    kiosk.wait(
        f"refund {seq} {state}",
        lambda _s: any(
            r["refund_seq"] == seq and r["state"] == state for r in refund_rows(kiosk, sale_id)
        ),
        timeout,
    )


def cloud_refunds(kiosk: Kiosk) -> dict[str, Any]:
    refunds: dict[str, Any] = kiosk.cloud()["refunds"]
    return refunds


def test_a_full_refund_by_ops_returns_all_the_money_once_and_restocks(
    kiosk: Kiosk, uplink: Observer
) -> None:
    sale_id = sell(kiosk)
    water_before = stock(kiosk, WATER)
    refund_op(
        kiosk,
        {"request_id": "req-full-0001", "sale_id": sale_id, "kind": "full", "reason": "returned"},
    )
    wait_refund_state(kiosk, sale_id, 1, "succeeded")

    [refund] = refund_rows(kiosk, sale_id)
    assert refund["amount_fen"] == 1000
    assert refund["refund_no"] == sale_id.replace("-", "")[:29] + "R01"
    assert cloud_refunds(kiosk)[refund["refund_no"]]["money_moves"] == 1
    assert stock(kiosk, WATER) == water_before + 1
    uplink.wait_for(lambda _m: len(txns(uplink, "txn.refunded")) == 1)
    [record] = txns(uplink, "txn.refunded")
    assert record["amount_fen"] == 1000 and record["restocked"] is True
    assert [(line["barcode"], line["quantity"]) for line in record["lines"]] == [
        (WATER, 1),
        (COLA, 1),
        (NOODLES, 1),
    ]
    uplink.wait_for(lambda _m: len(replies(uplink, "req-full-0001")) == 1)
    [reply] = replies(uplink, "req-full-0001")
    assert reply["state"] == "accepted" and reply["result"]["refund_no"] == refund["refund_no"]
    kiosk.wait_settled()
    assert len(kiosk.receipts()) == 1, "an ops refund prints no slip: nobody is at the kiosk"


def test_line_and_amount_refunds_take_only_what_is_left_and_then_nothing(
    kiosk: Kiosk, uplink: Observer
) -> None:
    sale_id = sell(kiosk)
    noodles_before = stock(kiosk, NOODLES)
    refund_op(
        kiosk,
        {
            "request_id": "req-line-0001",
            "sale_id": sale_id,
            "kind": "lines",
            "lines": [{"line_no": 3, "quantity": 1}],
            "reason": "damaged",
        },
    )
    wait_refund_state(kiosk, sale_id, 1, "succeeded")
    refund_op(
        kiosk,
        {"request_id": "req-amnt-0001", "sale_id": sale_id, "kind": "amount", "amount_fen": 500},
    )
    wait_refund_state(kiosk, sale_id, 2, "succeeded")
    refund_op(
        kiosk,
        {"request_id": "req-over-0001", "sale_id": sale_id, "kind": "amount", "amount_fen": 51},
    )
    uplink.wait_for(lambda _m: len(replies(uplink, "req-over-0001")) == 1)

    assert [(r["amount_fen"], r["state"]) for r in refund_rows(kiosk, sale_id)] == [
        (450, "succeeded"),
        (500, "succeeded"),
    ]
    [over] = replies(uplink, "req-over-0001")
    assert over == {
        "request_id": "req-over-0001",
        "op": "op.refund",
        "state": "rejected",
        "reason": "refund of 51 fen is more than the 50 fen paid and not yet refunded",
        "result": {},
    }
    assert stock(kiosk, NOODLES) == noodles_before, "damaged goods are not put back on sale"
    assert sorted(r["money_moves"] for r in cloud_refunds(kiosk).values()) == [1, 1]


def test_a_duplicated_or_replayed_refund_command_refunds_once(
    kiosk: Kiosk, uplink: Observer
) -> None:
    sale_id = sell(kiosk)
    body = {"request_id": "req-dupe-0001", "sale_id": sale_id, "kind": "amount", "amount_fen": 300}
    payload = refund_op(kiosk, body)
    kiosk.sim.publish(TOPICS.downlink(Downlink.OP), payload)  # the same envelope replayed
    refund_op(kiosk, body)  # the same request in a new envelope (the backend retried)
    wait_refund_state(kiosk, sale_id, 1, "succeeded")
    uplink.wait_for(lambda _m: len(replies(uplink, "req-dupe-0001")) == 2)
    time.sleep(0.5)  # room for a wrong third reply or second refund to show up

    assert [r["amount_fen"] for r in refund_rows(kiosk, sale_id)] == [300]
    first, again = replies(uplink, "req-dupe-0001")
    assert first["state"] == again["state"] == "accepted"
    assert first["result"]["refund_no"] == again["result"]["refund_no"]
    assert again["reason"].startswith("already started")
    assert kiosk.status()["link"]["downlink"]["rejected"].get("replayed") == 1
    assert [r["money_moves"] for r in cloud_refunds(kiosk).values()] == [1]


def test_a_refund_over_the_paid_amount_is_refused_and_nothing_is_sent(
    kiosk: Kiosk, uplink: Observer
) -> None:
    sale_id = sell(kiosk)
    refund_op(
        kiosk,
        {"request_id": "req-big-00001", "sale_id": sale_id, "kind": "amount", "amount_fen": 1001},
    )
    uplink.wait_for(lambda _m: len(replies(uplink, "req-big-00001")) == 1)
    [reply] = replies(uplink, "req-big-00001")
    assert reply["state"] == "rejected"
    assert (
        reply["reason"] == "refund of 1001 fen is more than the 1000 fen paid and not yet refunded"
    )
    assert refund_rows(kiosk, sale_id) == []
    assert cloud_refunds(kiosk) == {}


def test_processing_then_succeeds_by_the_query_schedule(kiosk: Kiosk) -> None:
    kiosk.sim.settings.refund_scenario = RefundScenario.PROCESSING
    sale_id = sell(kiosk)
    refund_op(kiosk, {"request_id": "req-proc-0001", "sale_id": sale_id, "kind": "full"})
    wait_refund_state(kiosk, sale_id, 1, "processing")
    wait_refund_state(kiosk, sale_id, 1, "succeeded")
    [refund] = cloud_refunds(kiosk).values()
    assert refund["money_moves"] == 1 and refund["requests"] == 1


def test_an_abnormal_refund_is_escalated_and_not_retried(kiosk: Kiosk, uplink: Observer) -> None:
    kiosk.sim.settings.refund_scenario = RefundScenario.ABNORMAL
    sale_id = sell(kiosk)
    refund_op(kiosk, {"request_id": "req-abnm-0001", "sale_id": sale_id, "kind": "full"})
    wait_refund_state(kiosk, sale_id, 1, "abnormal")
    kiosk.wait("escalated to ops", lambda _s: "refund.escalated" in kiosk.cloud()["received"])
    sent = kiosk.cloud()["received"]
    time.sleep(2.0)  # five query intervals: an escalated refund must stay quiet

    assert kiosk.cloud()["received"] == sent, "an abnormal refund was retried"
    assert sent["refund.request"] == 1
    [escalated] = kiosk.status()["refunds"]["escalated"]
    assert escalated["state"] == "abnormal"
    assert escalated["detail"] == "the shopper's account cannot take the refund"
    assert txns(uplink, "txn.refunded") == []
    refund_op(kiosk, {"request_id": "req-abnm-0002", "sale_id": sale_id, "kind": "full"})
    uplink.wait_for(lambda _m: len(replies(uplink, "req-abnm-0002")) == 1)
    [reply] = replies(uplink, "req-abnm-0002")
    assert reply["state"] == "rejected", "money that may have moved is not refunded again"


def test_the_technician_refunds_a_line_with_the_token_and_a_slip_prints(kiosk: Kiosk) -> None:
    sale_id = sell(kiosk)
    ask = {
        "request_id": "tech-0000001",
        "sale_id": sale_id,
        "kind": "lines",
        "lines": [{"line_no": 2, "quantity": 1}],
        "reason": "returned",
    }
    try:
        kiosk.daemon.control("refund.start", {**ask, "token": "wrong"})
        raise AssertionError("a wrong token was accepted")
    except RuntimeError as exc:
        assert str(exc) == "wrong technician token"
    assert refund_rows(kiosk, sale_id) == []

    cli = [sys.executable, "-m", "edged", "refund", sale_id, "--line", "2:1", "--reason",
           "returned", "--config", str(kiosk.daemon.config_file)]  # fmt: skip
    env = {**os.environ, "EDGED_SECURITY__TECHNICIAN_TOKEN": TECHNICIAN_TOKEN}
    out = subprocess.run(cli, capture_output=True, text=True, env=env, check=True).stdout
    started = json.loads(out)
    assert started["amount_fen"] == 350 and started["state"] == "requested"
    wait_refund_state(kiosk, sale_id, 1, "succeeded")
    kiosk.wait("slip printed", lambda _s: len(list((kiosk.data / "printer").glob("*.txt"))) == 2)
    slip = [
        p.read_text(encoding="utf-8")
        for p in sorted((kiosk.data / "printer").glob("*.txt"))
        if "退款凭证" in p.read_text(encoding="utf-8")
    ]
    assert len(slip) == 1 and "¥3.50" in slip[0] and started["refund_no"] in slip[0]


def test_a_sale_marked_for_refund_is_refunded_in_full_automatically(kiosk: Kiosk) -> None:
    """The release service marks a paid sale whose goods did not leave, in the transaction
    that records the failed release; here the kiosk dies right after that commit."""
    sale_id = sell(kiosk)
    kiosk.daemon.kill()
    conn = sqlite3.connect(kiosk.data / "edged.db")
    with conn:
        conn.execute(
            "INSERT INTO refund_marks (sale_id, marked_at) VALUES (?, ?)",
            (sale_id, datetime.now(UTC).isoformat()),
        )
    conn.close()
    kiosk.restart()
    wait_refund_state(kiosk, sale_id, 1, "succeeded")
    [row] = refund_rows(kiosk, sale_id)
    assert (row["amount_fen"], row["origin"], row["reason"]) == (1000, "auto", "goods_not_released")
    assert kiosk.rows("SELECT refund_no FROM refund_marks") == [{"refund_no": row["refund_no"]}]
