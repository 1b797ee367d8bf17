"""SIGKILL of the daemon at each payment state, then restart.

After every restart: no sale lost, none paid twice, no goods released without the backend's
signed SUCCESS, every paid sale's receipt printed exactly once. The broker keeps the
daemon's persistent session, so a result the backend sent while the kiosk was dead still
arrives; if it did not, the kiosk's recovery query would fetch it.
"""

from __future__ import annotations

import time

from tests.e2e.kiosk import Kiosk, code


def assert_consistent(kiosk: Kiosk) -> str:
    """The books of kiosk and backend agree; returns the one payment's final local state."""
    status = kiosk.wait_settled(timeout=30)
    cloud = kiosk.cloud()["trades"]
    local = {r["trade_no"]: r for r in kiosk.rows("SELECT trade_no, state FROM payments")}
    assert set(local) == set(cloud), "a payment request was lost or invented"
    for trade_no, trade in cloud.items():
        assert trade["charges"] <= 1
        assert (local[trade_no]["state"] == "paid") == (trade["state"] == "SUCCESS")
    paid = [t for t, r in local.items() if r["state"] == "paid"]
    assert len(kiosk.receipts()) == len(paid), "a receipt without a payment, or twice"
    printed = kiosk.rows("SELECT sale_id FROM print_jobs WHERE state = 'printed'")
    assert len(printed) == len({p["sale_id"] for p in printed}) == len(paid)
    assert status["checkout"]["state"] in ("idle", "basket")
    [(_, row)] = local.items()
    return str(row["state"])


def test_killed_while_requested(kiosk: Kiosk) -> None:
    kiosk.sim.hold()
    kiosk.fill_basket()
    kiosk.scan(code("89"))
    kiosk.wait_payment_state("requested")
    kiosk.daemon.kill()
    kiosk.sim.release()  # the backend charges while the kiosk is down
    time.sleep(0.3)
    kiosk.restart()
    assert assert_consistent(kiosk) == "paid"


def test_killed_while_user_paying(kiosk: Kiosk) -> None:
    kiosk.fill_basket()
    kiosk.scan(code("02"))
    kiosk.wait_payment_state("user_paying")
    kiosk.daemon.kill()
    time.sleep(1.6)  # the shopper confirms on the phone while the kiosk is down
    kiosk.restart()
    assert assert_consistent(kiosk) == "paid"


def test_killed_while_reversing(kiosk: Kiosk) -> None:
    kiosk.fill_basket()
    kiosk.scan(code("03"))
    kiosk.wait_payment_state("user_paying")
    kiosk.sim.hold()
    kiosk.wait_payment_state("reversing", timeout=10)
    kiosk.daemon.kill()
    kiosk.sim.release()
    kiosk.restart()
    assert assert_consistent(kiosk) == "reversed"
    assert kiosk.status()["checkout"]["state"] == "basket"


def test_killed_while_reversing_when_the_shopper_paid_first(kiosk: Kiosk) -> None:
    kiosk.fill_basket()
    kiosk.scan(code("05"))
    kiosk.wait_payment_state("user_paying")
    kiosk.sim.hold()
    kiosk.wait_payment_state("reversing", timeout=10)
    kiosk.daemon.kill()
    kiosk.daemon.start()  # the backend is still out: the kiosk keeps asking for the reverse
    time.sleep(1.0)
    status = kiosk.status()
    assert status["payments"]["busy"] and not status["checkout"]["recovered"]
    assert kiosk.scan("6901028075831")["state"] == "paying"  # no new sale meanwhile
    kiosk.sim.release()
    assert assert_consistent(kiosk) == "paid"


def test_killed_right_after_the_code_was_shown_twice_over(kiosk: Kiosk) -> None:
    kiosk.fill_basket()
    kiosk.scan(code("89"))
    kiosk.daemon.kill()  # wherever it was: requested, paid, or printing the receipt
    kiosk.restart()
    kiosk.daemon.kill()
    kiosk.restart()
    assert assert_consistent(kiosk) == "paid"


def test_killed_while_the_native_qr_is_shown(kiosk: Kiosk) -> None:
    kiosk.fill_basket()
    kiosk.daemon.control("checkout.pay_qr")
    kiosk.daemon.kill()
    time.sleep(1.2)  # the shopper pays in the mini-program meanwhile
    kiosk.restart()
    assert assert_consistent(kiosk) == "paid"
