"""A vending counter end to end: real Mosquitto, the daemon as a process, the simulated cloud,
the door's relay board a real pseudo-terminal. Goods leave only against a committed, paid sale:
exactly one unlock frame per paid sale, not one byte for any other outcome."""

from __future__ import annotations

import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edged.cloudsim.keys import ensure_keys
from edged.contract.topics import Downlink
from edged.services.release import messages as M
from tests.e2e.kiosk import ITEMS_TOTAL_FEN, TOPICS, code, forged_success
from tests.e2e.vending import OFF, ON, Vending, vending_counter
from tests.support.mosquitto import Mosquitto


def started(counter: Vending) -> None:
    """Starting switched the lock off: that frame, and nothing else, is on the wire."""
    assert counter.relay.read_exactly(4) == OFF
    assert counter.relay.read_all() == b""


def test_a_paid_sale_unlocks_the_door_once_and_reports_each_door_event(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with vending_counter(mosquitto, tmp_path) as counter:
        started(counter)
        counter.fill_basket()
        counter.scan(code("89"))
        counter.wait_release("unlocked")
        assert counter.relay.read_exactly(4) == ON
        counter.door("open")
        counter.wait_release("opened")
        assert counter.relay.read_exactly(4) == OFF  # relocked the moment it opened
        counter.door("closed")
        status = counter.wait_release("closed")
        assert counter.relay.read_all() == b""  # exactly one unlock for the sale
        [sale] = counter.paid_sales()
        assert status["release"]["last"]["sale_id"] == sale
        frames = counter.display_frames()
        opened = next(i for i, frame in enumerate(frames) if M.DOOR_OPEN in frame)
        thanked = next(i for i, frame in enumerate(frames) if frame.startswith(M.THANK_YOU))
        assert M.CLOSE_DOOR in frames[opened]
        # while the door was released no checkout screen (the welcome after the receipt) came
        assert not [f for f in frames[opened:thanked] if f.startswith("欢迎光临")]
        counter.wait(
            "the door's story at the cloud",
            lambda _s: (
                counter.cloud()["releases"].get("1") == ["pending", "unlocked", "opened", "closed"]
            ),
        )
        assert counter.refund_marks() == []


def test_declined_reversed_and_forged_payments_put_no_byte_on_the_relay(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with vending_counter(mosquitto, tmp_path) as counter:
        started(counter)
        counter.fill_basket()
        counter.scan(code("01"))  # declined
        counter.wait_settled()
        counter.scan(code("03"))  # never confirmed: the kiosk reverses
        counter.wait("reversed", lambda s: (s["payments"]["last"] or {}).get("state") == "reversed")
        counter.wait_settled()
        counter.sim.hold()  # only the forger answers now
        counter.scan(code("89"))
        trade_no = counter.wait_payment_state("requested")["payments"]["open"][0]["trade_no"]
        backend_key = ensure_keys(counter.data / "cloudsim").signing
        for payload in (
            forged_success(trade_no, None),
            forged_success(trade_no, Ed25519PrivateKey.generate()),
            forged_success(trade_no, backend_key, amount=ITEMS_TOTAL_FEN - 1),
            forged_success("0" * 32, backend_key),
        ):
            counter.sim.publish(TOPICS.downlink(Downlink.PAY), payload)
        counter.wait(
            "all four forgeries rejected",
            lambda s: (
                s["link"]["downlink"]["rejected"].get("unsigned") == 1
                and s["link"]["downlink"]["rejected"].get("forged") == 1
                and s["payments"]["rejected_results"].get("amount does not match the trade") == 1
                and s["payments"]["rejected_results"].get("unknown trade number") == 1
            ),
        )
        assert counter.relay.read_all() == b""
        assert counter.release_states() == [] and counter.paid_sales() == []
        counter.sim.release()  # the real backend's SUCCESS: now, and only now, one unlock
        counter.wait_release("unlocked")
        assert counter.relay.read_exactly(4) == ON


def test_killed_between_paid_and_unlock_and_restarted_inside_the_window(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with vending_counter(mosquitto, tmp_path, plugged=False) as counter:
        counter.fill_basket()
        counter.scan(code("89"))
        counter.wait_release("pending")  # paid; the relay board is not there to unlock
        counter.daemon.kill()
        counter.relay.plug()
        counter.restart()
        counter.wait_release("unlocked")
        assert counter.relay.read_exactly(8) == OFF + ON  # start locked, then the one unlock
        counter.door("open")
        counter.wait_release("opened")
        counter.door("closed")
        counter.wait_release("closed")
        counter.daemon.kill()  # and once more: a finished release is never unlocked again
        counter.restart()
        time.sleep(0.5)
        assert counter.relay.read_all() == OFF + OFF  # close after "opened", start locked
        assert counter.refund_marks() == []


def test_killed_between_paid_and_unlock_and_restarted_too_late(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with vending_counter(mosquitto, tmp_path, plugged=False, restart_window_s=1) as counter:
        counter.fill_basket()
        counter.scan(code("89"))
        counter.wait_release("pending")
        counter.daemon.kill()
        time.sleep(1.5)  # the shopper has walked away
        counter.relay.plug()
        counter.restart()
        counter.wait_release("not_opened")
        time.sleep(0.3)
        assert counter.relay.read_all() == OFF  # started locked; never unlocked
        assert counter.refund_marks() == counter.paid_sales()
        [row] = counter.rows("SELECT reason FROM releases")
        assert row["reason"].startswith("not unlocked: ") and "the window is 1 s" in row["reason"]


def test_a_door_not_opened_relocks_and_marks_the_sale_for_refund(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with vending_counter(mosquitto, tmp_path, open_within_s=1) as counter:
        started(counter)
        counter.fill_basket()
        counter.scan(code("89"))
        counter.wait_release("not_opened")
        assert counter.relay.read_exactly(8) == ON + OFF
        assert counter.refund_marks() == counter.paid_sales() != []
        assert any(M.NOT_OPENED in frame for frame in counter.display_frames())
        counter.wait(
            "the refund mark at the cloud",
            lambda _s: (
                counter.cloud()["releases"].get("1") == ["pending", "unlocked", "not_opened"]
            ),
        )


def test_a_door_left_open_raises_the_alarm_on_display_health_and_status(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with vending_counter(mosquitto, tmp_path, left_open_s=5) as counter:
        started(counter)
        counter.fill_basket()
        counter.scan(code("89"))
        counter.wait_release("unlocked")
        counter.door("open")
        status = counter.wait_release("left_open", timeout=10)
        assert status["release"]["alarm"] == "door left open: slot 1"
        [device] = [d for d in status["devices"] if d["kind"] == "release"]
        assert (device["ok"], device["detail"]) == (False, "left open: slot 1")
        assert any(M.DOOR_LEFT_OPEN in frame for frame in counter.display_frames())
        counter.door("closed")
        status = counter.wait_release("closed")
        assert status["release"]["alarm"] is None
        assert counter.refund_marks() == []
