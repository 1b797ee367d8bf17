"""A SUCCESS that is unsigned, wrongly signed, for the wrong amount or the wrong trade, published
straight to the broker, releases nothing: no sale completes, no receipt prints."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edged.cloudsim.keys import ensure_keys
from edged.contract.topics import Downlink
from tests.e2e.kiosk import ITEMS_TOTAL_FEN, TOPICS, Kiosk, code, forged_success


def test_forged_successes_release_nothing(kiosk: Kiosk) -> None:
    kiosk.sim.hold()  # the real backend is slow today: only the forger answers
    kiosk.fill_basket()
    kiosk.scan(code("89"))
    status = kiosk.wait_payment_state("requested")
    trade_no = status["payments"]["open"][0]["trade_no"]
    backend_key = ensure_keys(kiosk.data / "cloudsim").signing
    forged: list[tuple[str, bytes]] = [
        ("unsigned", forged_success(trade_no, None)),
        ("forged", forged_success(trade_no, Ed25519PrivateKey.generate())),
        ("wrong amount", forged_success(trade_no, backend_key, amount=ITEMS_TOTAL_FEN - 1)),
        ("wrong trade", forged_success("0" * 32, backend_key)),
    ]
    for _name, payload in forged:
        kiosk.sim.publish(TOPICS.downlink(Downlink.PAY), payload)

    def all_rejected(s: dict[str, Any]) -> bool:
        link = s["link"]["downlink"]["rejected"]
        pay = s["payments"]["rejected_results"]
        return (
            link.get("unsigned") == 1
            and link.get("forged") == 1
            and pay.get("amount does not match the trade") == 1
            and pay.get("unknown trade number") == 1
        )

    status = kiosk.wait("all four rejected", all_rejected, timeout=10)
    assert status["checkout"]["state"] == "paying"
    assert kiosk.payment_state(status) == "requested"
    assert kiosk.receipts() == []
    assert kiosk.rows("SELECT state FROM payments") == [{"state": "requested"}]
    # the real backend answers: only now does the sale complete, once
    kiosk.sim.release()
    status = kiosk.wait_settled()
    assert status["payments"]["last"]["state"] == "paid"
    assert len(kiosk.receipts()) == 1
