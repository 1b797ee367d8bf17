"""Mini-program orders end to end: real Mosquitto, the daemon as a process, the simulated
cloud placing orders and issuing pickup QR codes. Pickup works while the broker is stopped
(SIGSTOP: unreachable, nothing gets through); `collected` reaches the cloud when it returns."""

from __future__ import annotations

import os
import signal
from typing import Any

from edged.contract.bodies import OrderCollect
from edged.contract.topics import DeviceTopics
from edged.services.orders import messages as M
from tests.e2e.kiosk import Kiosk
from tests.e2e.vending import OFF, ON, vending_counter
from tests.support.mosquitto import Mosquitto

HERE = DeviceTopics("e2e", "kiosk-1")
ELSEWHERE = DeviceTopics("e2e", "kiosk-2")


def orders(status: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = status["orders"]
    return result


def test_order_ticket_then_offline_qr_pickup_once_reported_when_the_broker_returns(
    kiosk: Kiosk,
) -> None:
    order = kiosk.sim.create_order(HERE)
    kiosk.wait("ticket printed", lambda s: orders(s)["by_state"] == {"ticket_printed": 1})
    [ticket] = kiosk.receipts()
    assert "拣货单 Pick ticket" in ticket and order.order_id in ticket
    kiosk.daemon.control("order.ready", {"order_id": order.order_id})
    before = ["received", "ticket_printed", "ready"]
    kiosk.wait("ready at the cloud", lambda _s: kiosk.sim.order_statuses(order.order_id) == before)
    token = kiosk.sim.pickup_token(order.order_id)
    assert kiosk.broker.process is not None
    broker = kiosk.broker.process.pid
    os.kill(broker, signal.SIGSTOP)  # the broker is unreachable from here on: the kiosk is offline
    kiosk.scan(token)
    status = kiosk.wait("collected", lambda s: orders(s)["by_state"] == {"collected": 1})
    assert orders(status)["display"]["headline"] == M.COLLECTED_COUNTER
    kiosk.wait("the slip", lambda _s: len(kiosk.receipts()) == 2)
    assert "取货单 Collection slip" in kiosk.receipts()[1]
    kiosk.scan(token)  # shown again
    status = kiosk.wait(
        "replay refused", lambda s: orders(s)["refused_pickups"].get("already_collected") == 1
    )
    assert "Already collected at" in orders(status)["display"]["headline"]
    for bad in (
        kiosk.sim.pickup_token(order.order_id, ttl_s=-1),
        kiosk.sim.pickup_token(order.order_id, device=ELSEWHERE),
        token[:-8] + ("A" * 8 if not token.endswith("A" * 8) else "B" * 8),
    ):
        kiosk.scan(bad)
    status = kiosk.wait(
        "three refusals",
        lambda s: sum(orders(s)["refused_pickups"].values()) == 4,
    )
    refused = orders(status)["refused_pickups"]
    assert refused == {"already_collected": 1, "expired": 1, "other_device": 1, "forged": 1}
    assert kiosk.rows("SELECT COUNT(*) AS n FROM print_jobs")[0]["n"] == 2  # nothing else
    assert kiosk.sim.order_statuses(order.order_id) == before  # nothing got through
    assert kiosk.status()["store"]["outbox_depth"] >= 1  # `collected` waits in the outbox
    os.kill(broker, signal.SIGCONT)
    kiosk.wait(
        "collected at the cloud",
        lambda _s: (
            kiosk.sim.order_statuses(order.order_id)
            == ["received", "ticket_printed", "ready", "collected"]
        ),
        timeout=30,
    )


def test_code_entry_locks_after_five_wrong_codes(kiosk: Kiosk) -> None:
    order = kiosk.sim.create_order(HERE)
    kiosk.wait("received", lambda s: orders(s)["by_state"].get("ticket_printed") == 1)
    kiosk.daemon.control("order.ready", {"order_id": order.order_id})
    wrong = "000000" if order.code != "000000" else "111111"
    answers = [kiosk.daemon.control("order.code", {"code": wrong}) for _ in range(5)]
    assert [a["reason"] for a in answers] == ["wrong_code"] * 4 + ["locked"]
    locked = kiosk.daemon.control("order.code", {"code": order.code})
    assert locked["reason"] == "locked" and not locked["ok"]
    assert orders(kiosk.status())["by_state"] == {"ready": 1}


def test_a_slot_order_opens_its_slot_on_the_relay_once(mosquitto: Mosquitto, tmp_path: Any) -> None:
    with vending_counter(mosquitto, tmp_path) as counter:
        assert counter.relay.read_exactly(4) == OFF
        order = counter.sim.create_order(
            HERE, collect=OrderCollect(mode="slot", slot=1, prestocked=True)
        )
        counter.wait("ready", lambda s: orders(s)["by_state"].get("ready") == 1)
        result = counter.daemon.control("order.code", {"code": order.code})
        assert result["ok"] and result["message"] == M.COLLECTED_SLOT.format(slot=1)
        counter.wait_release("unlocked")
        assert counter.relay.read_exactly(4) == ON
        again = counter.daemon.control("order.code", {"code": order.code})
        assert again["reason"] == "already_collected"
        counter.door("open")
        counter.wait_release("opened")
        counter.door("closed")
        counter.wait_release("closed")
        assert counter.relay.read_all() == OFF  # relocked when it opened; no second unlock
