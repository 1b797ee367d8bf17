"""Both payment flows end to end: real Mosquitto, the daemon as a process, the simulated cloud.

Each test asserts what the shopper sees (display frames, receipts) and what the backend
recorded (trades, charges, transactions) — never an internal call.
"""

from __future__ import annotations

from typing import Any

from edged.cloudsim.scenarios import Scenario
from tests.e2e.kiosk import ITEMS_TOTAL_FEN, Kiosk, code


def paid_and_idle(s: dict[str, Any]) -> bool:
    return (
        s["checkout"]["state"] == "idle"
        and s["checkout"]["last_paid_sale"] is not None
        and s["checkout"]["print_queue"]["printed"] == 1
    )


def charges(kiosk: Kiosk) -> list[int]:
    return [t["charges"] for t in kiosk.cloud()["trades"].values()]


def test_micropay_happy_path_prints_one_receipt_and_never_keeps_the_code(kiosk: Kiosk) -> None:
    kiosk.fill_basket()
    shown = code("89")
    kiosk.scan(shown)
    status = kiosk.wait("paid", paid_and_idle)
    assert status["payments"]["last"]["state"] == "paid"
    [receipt] = kiosk.receipts()
    assert "¥10.00" in receipt and status["payments"]["last"]["trade_no"] in receipt
    assert charges(kiosk) == [1]
    kiosk.wait("txn at the cloud", lambda _s: kiosk.cloud()["txns"] == 1)
    assert any("谢谢惠顾 Thank you" in frame for frame in kiosk.display_frames())
    # the code is in no log line, no database page and no printout
    kiosk.daemon.terminate()
    blobs = [kiosk.daemon.log_file.read_bytes()]
    blobs += [p.read_bytes() for p in kiosk.data.rglob("*") if p.is_file()]
    assert not [b for b in blobs if shown.encode() in b]


def test_native_qr_happy_path(kiosk: Kiosk) -> None:
    kiosk.fill_basket()
    qr = kiosk.daemon.control("checkout.pay_qr")
    assert 4 <= len(qr["qr_data"]) <= 32 and qr["expires_at"]
    kiosk.wait("paid", paid_and_idle)
    assert len(kiosk.receipts()) == 1
    assert kiosk.cloud()["trades"][qr["trade_no"]] == {
        "state": "SUCCESS",
        "charges": 1,
        "amount_fen": ITEMS_TOTAL_FEN,
    }


def test_native_qr_expiry_closes_the_order_and_says_so(kiosk: Kiosk) -> None:
    kiosk.sim.settings.native_scenario = Scenario.NO_ANSWER
    kiosk.fill_basket()
    qr = kiosk.daemon.control("checkout.pay_qr")
    status = kiosk.wait_settled(timeout=20)
    assert status["payments"]["last"]["state"] == "cancelled"
    assert kiosk.cloud()["trades"][qr["trade_no"]]["state"] == "CLOSED"
    assert kiosk.receipts() == []
    assert any("expired" in frame for frame in kiosk.display_frames())


def test_decline_returns_the_sale_to_the_basket(kiosk: Kiosk) -> None:
    kiosk.fill_basket()
    kiosk.scan(code("01"))
    status = kiosk.wait_settled()
    assert status["payments"]["last"]["state"] == "failed"
    assert status["checkout"]["state"] == "basket"
    assert status["checkout"]["sale"]["total_fen"] == ITEMS_TOTAL_FEN
    assert kiosk.receipts() == [] and charges(kiosk) == [0]
    assert any("declined" in frame or "insufficient" in frame for frame in kiosk.display_frames())


def test_user_paying_then_success(kiosk: Kiosk) -> None:
    kiosk.fill_basket()
    kiosk.scan(code("02"))
    kiosk.wait("paid", paid_and_idle)
    assert any("confirm the payment on your phone" in f for f in kiosk.display_frames())
    assert charges(kiosk) == [1] and len(kiosk.receipts()) == 1


def test_user_paying_past_the_deadline_is_reversed(kiosk: Kiosk) -> None:
    kiosk.fill_basket()
    kiosk.scan(code("03"))
    status = kiosk.wait_settled()
    assert status["payments"]["last"]["state"] == "reversed"
    assert status["checkout"]["state"] == "basket"
    assert kiosk.receipts() == [] and charges(kiosk) == [0]
    [trade] = kiosk.cloud()["trades"].values()
    assert trade["state"] == "REVERSED"
    frames = kiosk.display_frames()
    assert any("confirm the payment on your phone" in f for f in frames)
    assert any("cancelling it" in f for f in frames)


def test_no_answer_is_reversed(kiosk: Kiosk) -> None:
    kiosk.fill_basket()
    kiosk.scan(code("04"))
    status = kiosk.wait_settled()
    assert status["payments"]["last"]["state"] == "reversed"
    assert kiosk.receipts() == [] and charges(kiosk) == [0]


def test_paid_during_the_reverse_is_paid_with_one_receipt(kiosk: Kiosk) -> None:
    kiosk.fill_basket()
    kiosk.scan(code("05"))
    kiosk.wait("paid", paid_and_idle, timeout=20)
    assert kiosk.status()["payments"]["last"]["state"] == "paid"
    assert charges(kiosk) == [1] and len(kiosk.receipts()) == 1
