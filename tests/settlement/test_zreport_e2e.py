"""The daily settlement end to end: 30 sales, refunds, voids, one across the cut-over.

The daemon runs under libfaketime with a clock the test moves (the shop's business day
changes at 04:00 UTC here). An independent MQTT subscriber records every `evt/txn`; the
Z-report's figures must equal what that subscriber computes on its own, and the report's
signature must verify with the device's public key alone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edged.contract.envelope import decode_envelope
from tests.e2e.kiosk import ITEMS, Kiosk, code
from tests.link.helpers import Observer
from tests.refunds.test_refunds_e2e import refund_op, wait_refund_state
from tests.settlement.conftest import FakeClock

DAY = "2026-12-01"
NEXT_DAY = "2026-12-02"


def sell(kiosk: Kiosk, items: tuple[str, ...], ending: str = "89") -> str:
    for item in items:
        kiosk.scan(item)
    kiosk.scan(code(ending))
    kiosk.wait_settled()
    [row] = kiosk.rows("SELECT id FROM sales WHERE state = 'paid' ORDER BY seq DESC LIMIT 1")
    return str(row["id"])


def void(kiosk: Kiosk, items: tuple[str, ...]) -> None:
    for item in items:
        kiosk.scan(item)
    kiosk.daemon.control("cart.cancel")


def independent_figures(uplink: Observer) -> dict[str, dict[str, Any]]:
    """Per business day, from the evt/txn messages alone (04:00 UTC cut-over)."""
    seen: dict[str, dict[str, Any]] = {}
    for message in uplink.snapshot():
        if message.topic.endswith("/evt/txn"):
            envelope = json.loads(message.payload)
            seen[envelope["id"]] = envelope  # a resend is the same message
    days: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"sales": 0, "sales_fen": 0, "by_method": defaultdict(int), "refunds": 0,
                 "refunds_fen": 0, "voided": 0, "ids": []}
    )  # fmt: skip
    for envelope in sorted(seen.values(), key=lambda e: e["seq"]):
        body = envelope["body"]
        at = body["succeeded_at"] if body["status"] == "refunded" else body["completed_at"]
        moment = datetime.fromisoformat(at.replace("Z", "+00:00")) - timedelta(hours=4)
        day = days[moment.date().isoformat()]
        day["ids"].append(envelope["id"])
        if body["status"] == "completed":
            day["sales"] += 1
            for payment in body["payments"]:
                day["sales_fen"] += payment["amount_fen"]
                day["by_method"][payment["method"]] += payment["amount_fen"]
        elif body["status"] == "refunded":
            day["refunds"] += 1
            day["refunds_fen"] += body["amount_fen"]
        else:
            day["voided"] += 1
    return days


def report_of(kiosk: Kiosk, day: str) -> dict[str, Any]:
    result: dict[str, Any] = kiosk.daemon.control("report.day", {"date": day, "print": True})
    return result


def test_thirty_sales_settle_to_what_an_independent_subscriber_counts(
    kiosk_with_clock: Kiosk, uplink: Observer, clock: FakeClock
) -> None:
    kiosk = kiosk_with_clock
    clock.set(datetime(2026, 12, 2, 3, 40, tzinfo=UTC))  # business day 2026-12-01
    sales = [sell(kiosk, ITEMS[: 1 + n % 3]) for n in range(29)]
    void(kiosk, ITEMS[:2])
    void(kiosk, ITEMS[1:])
    for request, sale_id, body in (
        ("zr-refund-01", sales[2], {"kind": "full", "reason": "returned"}),
        ("zr-refund-02", sales[7], {"kind": "amount", "amount_fen": 120}),
        ("zr-refund-03", sales[8], {"kind": "lines", "lines": [{"line_no": 1, "quantity": 1}]}),
    ):
        refund_op(kiosk, {"request_id": request, "sale_id": sale_id, **body})
        wait_refund_state(kiosk, sale_id, 1, "succeeded")

    clock.set(datetime(2026, 12, 2, 3, 59, 50, tzinfo=UTC))  # the 30th shopper, at the cut-over
    for item in ITEMS:
        kiosk.scan(item)
    clock.set(datetime(2026, 12, 2, 4, 0, 20, tzinfo=UTC))
    kiosk.scan(code("89"))
    kiosk.wait_settled()

    day = report_of(kiosk, DAY)["report"]
    next_day = report_of(kiosk, NEXT_DAY)["report"]
    uplink.wait_for(lambda m: sum(1 for x in m if x.topic.endswith("/evt/txn")) >= 35, 20)
    counted = independent_figures(uplink)

    for report, figures in ((day, counted[DAY]), (next_day, counted[NEXT_DAY])):
        assert report["sales"] == {"count": figures["sales"], "total_fen": figures["sales_fen"]}
        assert {m["method"]: m["total_fen"] for m in report["by_method"]} == figures["by_method"]
        assert report["refunds"] == {
            "count": figures["refunds"],
            "total_fen": figures["refunds_fen"],
        }
        assert report["net_fen"] == figures["sales_fen"] - figures["refunds_fen"]
        assert report["voided"] == {"count": figures["voided"]}
        assert report["txn_count"] == len(figures["ids"])
        ids = "".join(f"{i}\n" for i in figures["ids"])
        assert report["digest"] == hashlib.sha256(ids.encode()).hexdigest()
    assert (day["sales"]["count"], day["refunds"]["count"], day["voided"]["count"]) == (29, 3, 2)
    assert next_day["sales"]["count"] == 1 and next_day["sales"]["total_fen"] == 1000
    assert day["first_txn_seq"] == 1 and next_day["first_txn_seq"] == day["last_txn_seq"] + 1

    # The signature verifies with the public key alone (what the backend registered).
    show = ["identity", "show", "--config", str(kiosk.daemon.config_file)]
    public = subprocess.run(
        [sys.executable, "-m", "edged", *show], capture_output=True, text=True, check=True
    ).stdout.strip()
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public))
    # Past 04:00 the daemon may have settled the day on its own (its scheduler looks at least
    # once a minute); `report day` then made the next revision.
    published = {
        e.body["revision"]: e
        for e in (decode_envelope(m.payload) for m in uplink.snapshot())
        if e.type == "report.settlement" and e.body["business_day"] == DAY
    }
    assert sorted(published) == list(range(1, day["revision"] + 1))
    published_day = published[day["revision"]]
    for envelope in published.values():
        assert envelope.sig is not None
        key.verify(base64.b64decode(envelope.sig), envelope.signing_bytes())
    assert published_day.body == {k: v for k, v in day.items() if k != "msg_id"}
    forged = published_day.model_copy(update={"body": {**published_day.body, "net_fen": 1}})
    with pytest.raises(InvalidSignature):
        key.verify(base64.b64decode(published_day.sig or ""), forged.signing_bytes())
