"""SIGKILL of the daemon at each payment state, then restart.

After every restart: no sale lost, none paid twice, no goods released without the backend's
signed SUCCESS, every paid sale's receipt printed exactly once. The broker keeps the
daemon's persistent session, so a result the backend sent while the kiosk was dead still
arrives; if it did not, the kiosk's recovery query would fetch it.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.kiosk import Kiosk, code
from tests.support.polling import wait_until


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


def cloud_trade_state(kiosk: Kiosk) -> str | None:
    """The one trade's state at the backend (None before the backend heard of it)."""
    trades = kiosk.cloud()["trades"]
    return next(iter(trades.values()))["state"] if trades else None


def shopper_confirmed(kiosk: Kiosk) -> bool:
    """The simulated shopper's confirmation time on the phone has passed."""
    with kiosk.sim.lock:
        [trade] = kiosk.sim.backend.trades.values()
        return trade.pay_at is not None and time.monotonic() >= trade.pay_at


def left_the_kiosk(kiosk: Kiosk, type_name: str) -> bool:
    """The broker acknowledged a message of this type: it reaches the backend, kiosk or not."""
    rows = kiosk.rows(
        "SELECT 1 FROM outbox WHERE delivered_at IS NOT NULL "
        f"AND json_extract(CAST(payload AS TEXT), '$.type') = '{type_name}'"
    )
    return bool(rows)


def test_killed_while_requested(kiosk: Kiosk) -> None:
    kiosk.sim.hold()
    kiosk.fill_basket()
    kiosk.scan(code("89"))
    kiosk.wait_payment_state("requested")
    wait_until(lambda: left_the_kiosk(kiosk, "pay.micropay"), what="micropay at the broker")
    kiosk.daemon.kill()
    kiosk.sim.release()  # the backend charges while the kiosk is down
    wait_until(lambda: cloud_trade_state(kiosk) == "SUCCESS", what="charged while down")
    kiosk.restart()
    assert assert_consistent(kiosk) == "paid"


# A deadline far beyond the restart: the recovery query, not the deadline's reverse, decides,
# however slowly the machine restarts the daemon.
@pytest.mark.parametrize("kiosk", [{"deadline_s": 60}], indirect=True)
def test_killed_while_user_paying(kiosk: Kiosk) -> None:
    kiosk.fill_basket()
    kiosk.scan(code("02"))
    kiosk.wait_payment_state("user_paying")
    kiosk.daemon.kill()
    wait_until(lambda: shopper_confirmed(kiosk), what="the shopper confirmed while down")
    assert cloud_trade_state(kiosk) == "USERPAYING"  # the backend learns it on the next query
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
    [before] = kiosk.rows("SELECT trade_no, reverse_attempts FROM payments")
    kiosk.daemon.start()  # the backend is still out: the kiosk keeps asking for the reverse
    wait_until(
        lambda: (
            kiosk.rows("SELECT reverse_attempts FROM payments")[0]["reverse_attempts"]
            > before["reverse_attempts"]
        ),
        what="another reverse after the restart",
    )
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
    wait_until(lambda: cloud_trade_state(kiosk) is not None, what="the order at the backend")
    kiosk.daemon.kill()
    # The shopper pays in the mini-program meanwhile.
    wait_until(lambda: cloud_trade_state(kiosk) == "SUCCESS", what="paid while down")
    kiosk.restart()
    assert assert_consistent(kiosk) == "paid"
