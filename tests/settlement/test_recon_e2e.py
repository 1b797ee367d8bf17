"""Reconciliation with the simulated cloud: lost transactions are found and resent until the
day is `reconciled`; an amount the backend holds differently ends `mismatch` with it."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.kiosk import ITEMS, Kiosk
from tests.link.helpers import Observer
from tests.settlement.test_zreport_e2e import sell


def recon_reports(uplink: Observer, day: str) -> list[dict[str, Any]]:
    found = []
    for message in uplink.snapshot():
        if message.topic.endswith("/evt/report"):
            envelope = json.loads(message.payload)
            if envelope["type"] == "report.recon" and envelope["body"]["business_day"] == day:
                found.append(envelope["body"])
    return found


def wait_reported(uplink: Observer, day: str, state: str) -> None:
    """Until the uplink saw the day's `report.recon` in `state`: it is published after the
    state is committed, so the store says it a moment before the broker has it."""
    uplink.wait_for(lambda _seen: any(r["state"] == state for r in recon_reports(uplink, day)))


def settled_day(kiosk: Kiosk, day: str) -> dict[str, Any]:
    [found] = [d for d in kiosk.status()["settlement"]["days"] if d["business_day"] == day]
    return found


def journal(kiosk: Kiosk) -> dict[int, str]:
    return {
        r["txn_seq"]: r["msg_id"] for r in kiosk.rows("SELECT txn_seq, msg_id FROM txn_journal")
    }


def test_two_transactions_the_cloud_lost_are_resent_and_the_day_reconciles(
    kiosk: Kiosk, uplink: Observer
) -> None:
    sell(kiosk, ITEMS[:1])
    with kiosk.sim.lock:
        kiosk.sim.backend.lose_txns = 2
    sell(kiosk, ITEMS[:2])
    sell(kiosk, ITEMS)
    sell(kiosk, ITEMS[1:])
    kiosk.wait("the cloud lost two", lambda _s: len(kiosk.cloud_txns()) == 2)

    day = kiosk.daemon.control("report.day", {"print": False})["report"]["business_day"]
    kiosk.wait("reconciled", lambda _s: settled_day(kiosk, day)["recon"] == "reconciled")
    wait_reported(uplink, day, "reconciled")

    ids = journal(kiosk)
    first, second = recon_reports(uplink, day)
    assert first["state"] == "resending" and first["resent_ranges"] == [[2, 3]]
    assert [(d["kind"], d["txn_id"], d["txn_seq"]) for d in first["differences"]] == [
        ("local_only", ids[2], 2),
        ("local_only", ids[3], 3),
    ]
    assert second == {
        "business_day": day, "state": "reconciled", "round": 2, "differences": [],
        "resent_ranges": [],
    }  # fmt: skip
    assert {t["body"]["sale_no"] for t in kiosk.cloud_txns()} == {1, 2, 3, 4}


def test_an_amount_the_cloud_holds_differently_ends_mismatch_with_that_difference(
    kiosk: Kiosk, uplink: Observer
) -> None:
    with kiosk.sim.lock:
        kiosk.sim.backend.altered[2] = 999  # sale 2 (550 fen) is 999 fen at the backend
    sell(kiosk, ITEMS[:1])
    sell(kiosk, ITEMS[:2])
    sell(kiosk, ITEMS)

    day = kiosk.daemon.control("report.day", {"print": False})["report"]["business_day"]
    kiosk.wait("left mismatch", lambda _s: settled_day(kiosk, day)["recon"] == "mismatch")
    wait_reported(uplink, day, "mismatch")

    ids = journal(kiosk)
    difference = {
        "txn_id": ids[2], "kind": "amount_mismatch", "txn_seq": 2, "local_fen": 550,
        "remote_fen": 999,
    }  # fmt: skip
    assert settled_day(kiosk, day)["differences"] == [difference]
    states = [(r["state"], r["round"]) for r in recon_reports(uplink, day)]
    assert states == [("resending", 1), ("resending", 2), ("mismatch", 3)]
    assert recon_reports(uplink, day)[-1]["differences"] == [difference]
