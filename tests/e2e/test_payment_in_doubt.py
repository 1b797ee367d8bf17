"""A payment in doubt never strands the kiosk, end to end: real Mosquitto, the daemon as a
process, the simulated backend as its own process or thread, an independent subscriber.

- The broker stopped and restarted while the shopper confirms on the phone: the kiosk is
  taking the next shopper within deadline + reverse timeout, the trade ends exactly once,
  no goods leave without a signed SUCCESS.
- The deadline passes while the kiosk is offline: its request is withdrawn, never
  published (the independent subscriber sees nothing of that trade), the shopper is told
  once, and the next payment on the same kiosk goes through.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edged.cloudsim.scenarios import Settings
from edged.services.payments.states import MSG_REVERSING, WITHDRAWN_REASON
from tests.e2e.kiosk import Kiosk, code, write_config
from tests.link.helpers import Observer
from tests.support.cuttable_link import CuttableLink
from tests.support.daemon_process import DaemonProcess
from tests.support.kiosk_fixture import running_kiosk
from tests.support.mosquitto import Mosquitto

DEADLINE_S = 5
REVERSE_TIMEOUT_S = 8
PAY_TOPIC = "edge/v1/e2e/kiosk-1/evt/pay"


def last_payment(status: dict[str, Any]) -> dict[str, Any]:
    last: dict[str, Any] = status["payments"]["last"] or {}
    return last


def free_for_the_next_shopper(status: dict[str, Any]) -> bool:
    return not status["payments"]["busy"] and status["checkout"]["state"] in ("idle", "basket")


def doubt_states(seen: list[Any]) -> list[str]:
    """What operations heard on evt/pay about parked payments."""
    return [m.json()["body"]["state"] for m in seen if m.json()["type"] == "pay.doubt"]


def pay_and_wait(kiosk: Kiosk, before: str) -> dict[str, Any]:
    if kiosk.status()["checkout"]["state"] == "idle":
        kiosk.fill_basket()
    kiosk.scan(code("89"))
    return kiosk.wait(
        "the next shopper paid",
        lambda s: (
            s["checkout"]["state"] == "idle"
            and last_payment(s).get("trade_no") != before
            and last_payment(s).get("state") == "paid"
        ),
        timeout=30,
    )


# -- the deadline passes offline ---------------------------------------------------------


@pytest.fixture
def offline_kiosk(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[tuple[Kiosk, CuttableLink]]:
    wifi = CuttableLink(mosquitto.port).start()

    def through_wifi(config: Path, data: Path, _broker_port: int) -> None:
        write_config(config, data, wifi.port, deadline_s=DEADLINE_S)

    try:
        with running_kiosk(mosquitto, tmp_path, write=through_wifi, settings=Settings()) as kiosk:
            yield kiosk, wifi
    finally:
        wifi.stop()


def test_a_deadline_passing_offline_withdraws_the_request_and_it_is_never_published(
    offline_kiosk: tuple[Kiosk, CuttableLink], mosquitto: Mosquitto
) -> None:
    kiosk, wifi = offline_kiosk
    watcher = Observer(mosquitto.host, mosquitto.port, [PAY_TOPIC]).start()
    try:
        kiosk.fill_basket()
        wifi.cut()
        kiosk.wait("offline", lambda s: not s["link"]["connected"])
        kiosk.scan(code("89"))
        status = kiosk.wait_payment_state("requested")
        trade = status["payments"]["open"][0]["trade_no"]

        status = kiosk.wait(
            "withdrawn at the deadline",
            lambda s: last_payment(s).get("state") == "withdrawn" and not s["payments"]["busy"],
            timeout=DEADLINE_S + 10,
        )
        assert status["checkout"]["state"] == "basket", "the basket is the shopper's again"
        frames = kiosk.display_frames()
        assert len([f for f in frames if WITHDRAWN_REASON in f]) == 1, "told once"
        assert not [f for f in frames if MSG_REVERSING in f], "never 'cancelling it'"
        assert not [r for r in kiosk.rows("SELECT payload FROM outbox") if trade in str(r)]

        wifi.restore()
        kiosk.wait(
            "back online, outbox drained",
            lambda s: s["link"]["connected"] and s["link"]["queue_depth"] == 0,
            timeout=20,
        )
        paid = pay_and_wait(kiosk, trade)
        watcher.wait_for(
            lambda seen: any(
                paid["payments"]["last"]["trade_no"] in m.payload.decode() for m in seen
            )
        )
    finally:
        watcher.stop()

    seen = [m.payload.decode() for m in watcher.snapshot()]
    assert seen, "the subscriber saw the next payment"
    assert not [m for m in seen if trade in m], "nothing of the withdrawn trade ever left"
    assert kiosk.cloud()["trades"].get(trade) is None
    assert len(kiosk.receipts()) == 1


# -- the broker restarts while the shopper confirms on the phone -------------------------


@pytest.fixture
def kiosk_with_cloud_process(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Any]:
    data = tmp_path / "data"
    config = tmp_path / "edged.toml"
    write_config(
        config, data, mosquitto.port, deadline_s=DEADLINE_S, reverse_timeout_s=REVERSE_TIMEOUT_S
    )
    daemon = DaemonProcess(config, tmp_path / "daemon")
    daemon.start()  # makes the simulated backend's keys in data/cloudsim
    cloud_log = (tmp_path / "cloudsim.log").open("wb")
    cloud = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edged",
            "cloudsim",
            "--port",
            str(mosquitto.port),
            "--keys-dir",
            str(data / "cloudsim"),
            "--user-paying-s",
            "60",  # the shopper is still confirming when the broker goes
        ],
        stdout=subprocess.PIPE,
        stderr=cloud_log,
    )
    try:
        assert cloud.stdout is not None
        assert b"simulated cloud ready" in cloud.stdout.readline()
        kiosk = Kiosk(mosquitto, daemon, None, data)  # type: ignore[arg-type]
        kiosk.wait_ready()
        yield kiosk, cloud
    finally:
        daemon.kill()
        if cloud.poll() is None:
            cloud.kill()
            cloud.wait()
        cloud_log.close()


def cloud_summary(cloud: subprocess.Popen[bytes]) -> dict[str, Any]:
    cloud.send_signal(signal.SIGTERM)
    out, _ = cloud.communicate(timeout=10)
    summary: dict[str, Any] = json.loads(out.decode())
    return summary


def test_a_broker_restart_during_user_paying_frees_the_kiosk_in_bounded_time(
    kiosk_with_cloud_process: Any, mosquitto: Mosquitto
) -> None:
    kiosk, cloud = kiosk_with_cloud_process
    kiosk.fill_basket()
    kiosk.scan(code("02"))
    status = kiosk.wait_payment_state("user_paying")
    started = time.monotonic()
    trade = status["payments"]["open"][0]["trade_no"]

    mosquitto.stop()
    kiosk.wait("reversing, offline", lambda s: kiosk.payment_state(s) == "reversing", timeout=15)
    mosquitto.start()
    restarted = time.monotonic()
    status = kiosk.wait(
        "taking the next shopper",
        free_for_the_next_shopper,
        timeout=DEADLINE_S + REVERSE_TIMEOUT_S + 10,
    )
    free = time.monotonic()
    print(
        f"\nbroker restart -> kiosk free: {free - restarted:.1f} s; "
        f"payment start -> kiosk free: {free - started:.1f} s "
        f"(bound: deadline {DEADLINE_S} s + reverse timeout {REVERSE_TIMEOUT_S} s)"
    )
    assert free - started <= DEADLINE_S + REVERSE_TIMEOUT_S + 2
    ended = last_payment(status)
    assert ended["trade_no"] == trade
    assert ended["state"] in ("reversed", "in_doubt"), ended
    assert kiosk.receipts() == [], "no goods, no receipt without a signed SUCCESS"

    pay_and_wait(kiosk, trade)  # the next shopper pays on the same kiosk
    assert len(kiosk.receipts()) == 1
    summary = cloud_summary(cloud)
    assert summary["trades"][trade]["charges"] == 0
    assert summary["trades"][trade]["state"] in ("REVERSED", "USERPAYING")
    [(sale,)] = [
        (r["state"],)
        for r in kiosk.rows(f"SELECT state FROM sales WHERE paid_trade_no = '{trade}'")
    ] or [("unpaid",)]
    assert sale == "unpaid", "the doubtful trade paid no sale"


# -- a backend that does not answer in time: parked, then a late SUCCESS ------------------


@pytest.fixture
def kiosk_with_slow_cloud(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Kiosk]:
    payments = {"deadline_s": DEADLINE_S, "reverse_timeout_s": REVERSE_TIMEOUT_S}
    with running_kiosk(mosquitto, tmp_path, payments=payments, settings=Settings()) as kiosk:
        yield kiosk


def test_an_unconfirmed_reverse_parks_the_sale_and_a_late_success_is_flagged_for_refund(
    kiosk_with_slow_cloud: Kiosk, mosquitto: Mosquitto
) -> None:
    from edged.services.checkout import messages as M

    kiosk = kiosk_with_slow_cloud
    watcher = Observer(mosquitto.host, mosquitto.port, [PAY_TOPIC]).start()
    try:
        kiosk.fill_basket()
        kiosk.sim.hold()  # the backend is slow today: nothing is answered for a while
        kiosk.scan(code("89"))
        trade = kiosk.wait_payment_state("requested")["payments"]["open"][0]["trade_no"]
        status = kiosk.wait(
            "parked, the kiosk free",
            lambda s: free_for_the_next_shopper(s) and s["payments"]["in_doubt"],
            timeout=DEADLINE_S + REVERSE_TIMEOUT_S + 10,
        )
        assert [p["trade_no"] for p in status["payments"]["in_doubt"]] == [trade]
        assert status["checkout"]["state"] == "idle"
        assert len([f for f in kiosk.display_frames() if M.PAYMENT_IN_DOUBT in f]) == 1
        assert kiosk.rows(
            f"SELECT state FROM sales WHERE id = '{last_payment(status)['sale_id']}'"
        ) == [{"state": "in_doubt"}]

        kiosk.sim.release()  # the backend catches up: it charged the held micropay
        status = kiosk.wait(
            "the late SUCCESS recorded for refund",
            lambda s: [r["trade_no"] for r in s["payments"]["refund_due"]] == [trade],
            timeout=15,
        )
        assert status["payments"]["in_doubt"] == []
        assert kiosk.daemon.control("payments.in_doubt")["refund_due"][0]["trade_no"] == trade
        assert kiosk.receipts() == [], "a late SUCCESS releases nothing"

        pay_and_wait(kiosk, trade)  # the next shopper
        assert len(kiosk.receipts()) == 1
        watcher.wait_for(
            lambda seen: (
                [m.json()["body"]["state"] for m in seen if m.json()["type"] == "pay.doubt"]
                == ["in_doubt", "paid_late"]
            )
        )
    finally:
        watcher.stop()
    assert kiosk.cloud()["trades"][trade]["charges"] == 1


def test_staff_cancel_frees_a_kiosk_whose_reverse_is_not_confirmed(
    kiosk_with_slow_cloud: Kiosk,
) -> None:
    kiosk = kiosk_with_slow_cloud
    kiosk.fill_basket()
    kiosk.sim.hold()
    kiosk.scan(code("89"))
    kiosk.wait(
        "the request left the kiosk",
        lambda s: kiosk.payment_state(s) == "requested" and s["link"]["queue_depth"] == 0,
    )
    assert kiosk.daemon.control("cart.cancel")["outcome"] == "cancelling"
    status = kiosk.wait_payment_state("reversing")
    assert status["payments"]["busy"], "the reverse is not confirmed: still the kiosk's"
    reversing_since = time.monotonic()
    while time.monotonic() - reversing_since < 5.5:  # staff arrive a few seconds later
        time.sleep(0.5)
        assert kiosk.status()["payments"]["busy"]
    kiosk.daemon.control("cart.cancel")
    status = kiosk.wait("free", free_for_the_next_shopper, timeout=5)
    assert status["checkout"]["state"] == "idle"
    assert last_payment(status)["state"] == "in_doubt"
    assert kiosk.receipts() == []
    kiosk.sim.release()
    status = kiosk.wait("resolved", lambda s: s["payments"]["in_doubt"] == [], timeout=15)
    assert last_payment(status)["state"] in ("reversed", "paid_late")
