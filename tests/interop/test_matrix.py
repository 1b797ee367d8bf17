"""Sales and a drained backlog through each broker of the matrix, with the daemon as a process
and the simulated cloud on another node: what the shopper sees, what the backend recorded,
and every uplink message arriving exactly once by id (re-sends counted) and in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edged.cloudsim.scenarios import Settings
from edged.cloudsim.server import CloudSim
from edged.contract.topics import DeviceTopics, Uplink
from edged.runtime.clock import SystemClock
from edged.store import Store
from edged.store.outbox import Outbox
from tests.e2e.kiosk import Kiosk, code
from tests.interop.conftest import BrokerUnderTest, ClusterSession
from tests.link.helpers import Observer, Seen
from tests.support.daemon_process import DaemonProcess

SITE, DEVICE = "e2e", "kiosk-1"
ROOT = f"edge/v1/{SITE}/{DEVICE}"
WINDOW = 32
BACKLOG = 3000


def write_config(path: Path, data: Path, broker: BrokerUnderTest) -> None:
    """The simulated cloud runs in the test; `cloud.mode` stays `simulated`, so the daemon
    trusts the keys the simulator keeps in `<data>/cloudsim`."""
    endpoints = "".join(
        f'\n[[broker.endpoints]]\nhost = "{host}"\nport = {port}\n'
        for host, port in broker.endpoints
    )
    path.write_text(
        f"""
[device]
site = "{SITE}"
id = "{DEVICE}"

[paths]
data_dir = "{data}"

[broker]
mode = "external"
protocol = "{broker.protocol}"
keepalive_s = 5
{endpoints}
[link]
inflight_window = {WINDOW}
reconnect_min_s = 0.1
reconnect_max_s = 1

[payments]
deadline_s = 5
query_interval_s = 0.5
native_qr_ttl_s = 10

[display]
driver = "sim"
echo = true
""",
        encoding="utf-8",
    )


@pytest.fixture
def kiosk(broker: BrokerUnderTest, tmp_path: Path) -> Iterator[Kiosk]:
    data = tmp_path / "data"
    config = tmp_path / "edged.toml"
    write_config(config, data, broker)
    daemon = DaemonProcess(config, tmp_path / "daemon")
    sim = CloudSim(
        *broker.cloud,
        data / "cloudsim",
        Settings(user_paying_s=1.5, native_pay_after_s=1.0),
        mqtt5=broker.cloud_mqtt5,
        client_id=f"cloudsim-{tmp_path.name}",
    )
    daemon.start(ready_timeout=30)
    sim.start()
    try:
        kiosk = Kiosk(broker, daemon, sim, data)  # type: ignore[arg-type]
        kiosk.wait_ready()
        kiosk.wait("subscribed", lambda s: s["link"]["subscribed"], timeout=30)
        yield kiosk
    finally:
        daemon.kill()
        sim.stop()


def paid_and_idle(s: dict[str, Any]) -> bool:
    return (
        s["checkout"]["state"] == "idle"
        and s["checkout"]["last_paid_sale"] is not None
        and s["checkout"]["print_queue"]["printed"] == 1
    )


def test_a_micropay_sale_is_paid_printed_and_reported(kiosk: Kiosk) -> None:
    kiosk.fill_basket()
    kiosk.scan(code("89"))
    status = kiosk.wait("paid", paid_and_idle, timeout=30)
    assert status["payments"]["last"]["state"] == "paid"
    [receipt] = kiosk.receipts()
    assert "¥10.00" in receipt and status["payments"]["last"]["trade_no"] in receipt
    kiosk.wait("txn at the cloud", lambda _s: kiosk.cloud()["txns"] == 1, timeout=30)
    assert [t["charges"] for t in kiosk.cloud()["trades"].values()] == [1]
    link = kiosk.status()["link"]
    broker: BrokerUnderTest = kiosk.broker  # type: ignore[assignment]
    assert link["broker"] == "{}:{}".format(*broker.endpoints[0])
    # RabbitMQ 3.10 refuses MQTT 5: the daemon asked for it and fell back to 3.1.1 itself.
    expected = "mqtt311" if broker.clustered else broker.protocol
    assert link["protocol"] == expected


def test_a_shopper_confirming_on_the_phone_is_paid_once(kiosk: Kiosk) -> None:
    kiosk.fill_basket()
    kiosk.scan(code("02"))
    kiosk.wait("paid", paid_and_idle, timeout=30)
    assert any("confirm the payment on your phone" in f for f in kiosk.display_frames())
    assert [t["charges"] for t in kiosk.cloud()["trades"].values()] == [1]
    assert len(kiosk.receipts()) == 1


def test_a_native_qr_sale_is_paid(kiosk: Kiosk) -> None:
    kiosk.fill_basket()
    qr = kiosk.daemon.control("checkout.pay_qr")
    kiosk.wait("paid", paid_and_idle, timeout=30)
    assert kiosk.cloud()["trades"][qr["trade_no"]]["state"] == "SUCCESS"
    assert len(kiosk.receipts()) == 1


# -- a backlog ----------------------------------------------------------------------------


async def fill_backlog(data_dir: Path, n: int) -> list[str]:
    store = await Store.open(data_dir / "edged.db", SystemClock())
    try:
        outbox = Outbox(store, DeviceTopics(SITE, DEVICE))
        ids: list[str] = []
        kinds = [Uplink.TXN, Uplink.PAY, Uplink.ORDER, Uplink.STOCK]
        async with store.transaction() as tx:
            for i in range(n):
                envelope = await outbox.add(tx, kinds[i % len(kinds)], "test.msg", {"i": i})
                ids.append(envelope.id)
        return ids
    finally:
        await store.close()


def delivery_report(seen: list[Seen], ids: list[str]) -> tuple[set[str], int, list[str]]:
    """(ids that arrived, duplicates, topics whose first arrivals were out of order)."""
    order = {msg_id: n for n, msg_id in enumerate(ids)}
    ours = [m for m in seen if m.json()["id"] in order]
    first: dict[str, bytes] = {}
    per_topic: dict[str, list[int]] = {}
    for message in ours:
        msg_id = message.json()["id"]
        if msg_id in first:
            assert first[msg_id] == message.payload, "a re-send is the very same envelope"
            continue
        first[msg_id] = message.payload
        per_topic.setdefault(message.topic, []).append(order[msg_id])
    disordered = [t for t, positions in per_topic.items() if positions != sorted(positions)]
    return set(first), len(ours) - len(first), disordered


def drain_through(
    broker: BrokerUnderTest, tmp_path: Path, *, stop_node_after: int | None = None
) -> tuple[list[str], list[Seen], dict[str, Any]]:
    config = tmp_path / "edged.toml"
    write_config(config, tmp_path / "data", broker)
    ids = asyncio.run(fill_backlog(tmp_path / "data", BACKLOG))
    wanted = set(ids)
    backend = Observer(
        *broker.cloud,
        [f"{ROOT}/evt/#"],
        client_id=f"backend-{tmp_path.name}"[:23],
        persistent=True,
        mqtt5=broker.cloud_mqtt5,
    ).start()
    daemon = DaemonProcess(config, tmp_path / "run")
    try:
        daemon.start(ready_timeout=30)
        if stop_node_after is not None:
            backend.wait_for(lambda seen: len(seen) >= stop_node_after, within_s=60)
            broker.stop_daemon_node()
            arrived = {m.json()["id"] for m in backend.snapshot()} & wanted
            assert len(arrived) < BACKLOG, "the node must stop in the middle of the drain"
        backend.wait_for(
            lambda seen: {m.json()["id"] for m in seen} >= wanted,
            within_s=120,
        )
        deadline = time.monotonic() + 30
        status = daemon.control("status")
        while status["link"]["queue_depth"] > 0 or status["link"]["in_flight"] > 0:
            assert time.monotonic() < deadline, f"not marked delivered: {status['link']}"
            time.sleep(0.1)
            status = daemon.control("status")
        code_, _ = daemon.terminate(timeout=15)
        assert code_ == 0, daemon.log_tail()
    finally:
        daemon.kill()
        backend.stop()
    return ids, backend.snapshot(), status


def test_a_backlog_drains_exactly_once_by_id_and_in_order_per_topic(
    broker: BrokerUnderTest, tmp_path: Path
) -> None:
    ids, seen, status = drain_through(broker, tmp_path)
    arrived, duplicates, disordered = delivery_report(seen, ids)
    assert arrived == set(ids)
    assert duplicates == 0, "nothing failed, so nothing was re-sent"
    assert disordered == []
    assert status["link"]["connects"] == 1


def test_the_daemons_node_stopping_mid_drain_moves_it_on_with_nothing_lost(
    rabbit_session: ClusterSession, tmp_path: Path
) -> None:
    cluster = rabbit_session.get()
    a, b, c = cluster.nodes
    broker = BrokerUnderTest(
        "rabbitmq-cluster",
        endpoints=[(n.host, n.port) for n in (a, b, c)],
        cloud=(b.host, b.port),
        protocol="mqtt5",
        cloud_mqtt5=False,
        cluster=cluster,
    )
    ids, seen, status = drain_through(broker, tmp_path, stop_node_after=400)
    arrived, duplicates, disordered = delivery_report(seen, ids)
    print(f"node a stopped mid-drain: {duplicates} duplicates (window {WINDOW})")
    assert arrived == set(ids), f"{len(set(ids) - arrived)} messages lost"
    assert duplicates <= WINDOW, f"{duplicates} re-sends for one lost node, window {WINDOW}"
    assert disordered == []
    assert status["link"]["broker"] == f"{b.host}:{b.port}", "moved to the next endpoint"
    assert status["link"]["connects"] >= 2
    # The device's persistent session is a quorum queue, so its downlink subscription was
    # taken up again on node b although node a, where it was made, is down.
    assert status["link"]["subscribed"] is True
