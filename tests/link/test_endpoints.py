"""Several broker endpoints: tried in order, the link stays on the one that works, moves on
when a node dies or the broker says so (MQTT 5 reasons), and backs off the way it is asked."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from edged.contract.topics import Uplink
from edged.link.client import Endpoint
from edged.link.pump import OutboxPump
from edged.runtime.backoff import Backoff
from tests.link.helpers import Observer, first_seen_in_order, link_parts, plain_settings
from tests.support.daemon_process import DaemonProcess
from tests.support.mosquitto import Mosquitto
from tests.support.ports import free_port
from tests.support.refusing_broker import RefusingBroker

ROOT = "edge/v1/s1/k1"
USE_ANOTHER_SERVER = 0x9C
SERVER_MOVED = 0x9D
SERVER_BUSY = 0x89
QUOTA_EXCEEDED = 0x97


def local(port: int) -> Endpoint:
    return Endpoint("127.0.0.1", port)


async def until(check: Any, within_s: float = 10.0) -> None:
    for _ in range(int(within_s / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("condition not met")


def test_backoff_draws_full_jitter_between_minimum_and_a_growing_ceiling() -> None:
    backoff = Backoff(0.5, 8.0)
    delays = [backoff.next_delay() for _ in range(6)]
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert all(0.5 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    backoff.reset()
    many = [Backoff(0.5, 8.0) for _ in range(400)]
    for b in many:
        for _ in range(4):
            b.next_delay()
    fifth = [b.next_delay() for b in many]  # ceiling 8: full jitter fills [0.5, 8]
    assert min(fifth) < 1.5 and max(fifth) > 7.0, "the fleet spreads over the whole window"
    widest = Backoff(0.5, 60.0)
    spread = [Backoff(0.5, 60.0).next_delay(widest=True) for _ in range(400)]
    assert max(spread) > 40 and all(0.5 <= d <= 60 for d in spread)
    assert widest.next_delay() == 0.5, "a first ordinary delay is the minimum"


async def test_the_first_endpoint_that_works_is_used_and_kept_across_a_reconnect(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    dead = free_port()
    observer = Observer(mosquitto.host, mosquitto.port, [f"{ROOT}/#"]).start()
    try:
        async with link_parts(
            tmp_path,
            plain_settings(dead),
            endpoints=[local(dead), local(mosquitto.port)],
            reconnect_min_s=0.05,
            reconnect_max_s=0.2,
        ) as parts:
            parts.start()
            await parts.connected()
            status = await parts.link.status()
            assert status["broker"] == f"127.0.0.1:{mosquitto.port}"
            assert status["endpoint"] == 1
            assert status["endpoints"] == [f"127.0.0.1:{dead}", f"127.0.0.1:{mosquitto.port}"]
            assert "cannot reach" in status["last_error"] and str(dead) in status["last_error"]
            await observer.await_for(lambda seen: any(m.topic.endswith("/state") for m in seen))
            [birth] = [m.json() for m in observer.snapshot() if m.topic.endswith("/state")]
            assert birth["body"]["broker"] == f"127.0.0.1:{mosquitto.port}"

            mosquitto.restart()

            async def reconnected() -> bool:
                return parts.link.connects >= 2 and parts.link.connected.is_set()

            await until(reconnected)
            status = await parts.link.status()
            assert status["endpoint"] == 1, "the working endpoint is retried first"
    finally:
        observer.stop()


async def test_a_node_dying_mid_drain_moves_the_link_on_and_nothing_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Which node acknowledged each row: a node that acknowledged a message and was killed
    # before forwarding it to its subscriber loses it (these Mosquittos keep nothing on
    # disk), and how many that is depends on how far its subscriber lagged, not on the
    # device. The device's part is that everything the dying node had not acknowledged
    # goes again, to the other node.
    acked_by: dict[int, int] = {}
    original = OutboxPump.delivered
    using: list[Any] = []

    def spy(self: OutboxPump, mid: int, failure: str | None) -> None:
        seq = self._inflight.get(mid)
        if seq is not None:
            acked_by[seq] = using[0].link.endpoint.port
        original(self, mid, failure)

    monkeypatch.setattr(OutboxPump, "delivered", spy)
    first = Mosquitto(tmp_path / "node-a")
    second = Mosquitto(tmp_path / "node-b")
    first.start()
    second.start()
    watch = [Observer(b.host, b.port, [f"{ROOT}/evt/#"]).start() for b in (first, second)]
    try:
        async with link_parts(
            tmp_path,
            plain_settings(first.port),
            endpoints=[local(first.port), local(second.port)],
        ) as parts:
            using.append(parts)
            ids = await parts.add(3000, [Uplink.TXN, Uplink.PAY, Uplink.STOCK])
            parts.start()
            await watch[0].await_for(lambda seen: len(seen) >= 300)
            first.stop()

            async def drained() -> bool:
                return (await parts.outbox.stats()).depth == 0 and parts.link.pump.in_flight == 0

            await until(drained, within_s=30)
            status = await parts.link.status()
            id_of = {
                r[0]: r[1] for r in await parts.store.fetchall("SELECT seq, msg_id FROM outbox")
            }
    finally:
        for observer in watch:
            observer.stop()
        first.stop()
        second.stop()
    assert status["broker"] == f"127.0.0.1:{second.port}" and status["endpoint"] == 1
    seen = watch[0].snapshot() + watch[1].snapshot()
    order = {msg_id: n for n, msg_id in enumerate(ids)}
    seen_ids = {m.json()["id"] for m in seen}
    acked_by_first = {id_of[seq] for seq, port in acked_by.items() if port == first.port}
    assert set(id_of.values()) == set(ids) and len(acked_by) == len(ids), "every row acked"
    assert {id_of[seq] for seq, port in acked_by.items() if port == second.port}, "b took some"
    missing = set(ids) - seen_ids
    assert missing <= acked_by_first, "only what the dying node acknowledged can be lost"
    assert set(ids) - acked_by_first <= seen_ids, "the rest went again and arrived"
    for topic, positions in first_seen_in_order(seen, order).items():
        assert positions == sorted(positions), f"{topic} out of order across the move"


@pytest.mark.parametrize("reason", [USE_ANOTHER_SERVER, SERVER_MOVED])
async def test_use_another_server_goes_to_the_endpoint_the_reference_names(
    tmp_path: Path, mosquitto: Mosquitto, reason: int
) -> None:
    dead = free_port()
    redirect = RefusingBroker(reason, reference=f"127.0.0.1:{mosquitto.port}").start()
    try:
        async with link_parts(
            tmp_path,
            plain_settings(redirect.port),
            endpoints=[local(redirect.port), local(dead), local(mosquitto.port)],
            reconnect_min_s=0.05,
            reconnect_max_s=0.2,
        ) as parts:
            parts.start()
            await parts.connected()
            status = await parts.link.status()
    finally:
        redirect.stop()
    assert status["endpoint"] == 2 and status["connects"] == 1
    assert redirect.seen() == 1
    assert "cannot reach" not in status["last_error"], "the dead endpoint was skipped"
    assert status["last_error"] in (
        "broker refused: Use another server",
        "broker refused: Server moved",
    )


async def test_a_server_disconnect_saying_moved_moves_a_live_link(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    moving = RefusingBroker(
        SERVER_MOVED, reference=f"127.0.0.1:{mosquitto.port}", then_disconnect=True
    ).start()
    try:
        async with link_parts(
            tmp_path,
            plain_settings(moving.port),
            endpoints=[local(moving.port), local(mosquitto.port)],
            reconnect_min_s=0.05,
            reconnect_max_s=0.2,
        ) as parts:
            parts.start()

            async def on_second() -> bool:
                return parts.link.connected.is_set() and parts.link.endpoint.port == mosquitto.port

            await until(on_second)
            status = await parts.link.status()
    finally:
        moving.stop()
    assert status["connects"] == 2 and moving.seen() == 1
    assert status["last_error"] == "disconnected: Server moved"


@pytest.mark.parametrize("reason", [SERVER_BUSY, QUOTA_EXCEEDED])
async def test_busy_or_over_quota_draws_the_next_delay_over_the_whole_window(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, reason: int
) -> None:
    busy = RefusingBroker(reason).start()
    caplog.set_level(logging.WARNING, logger="edged.link")
    try:
        async with link_parts(
            tmp_path,
            plain_settings(busy.port),
            reconnect_min_s=0.001,
            reconnect_max_s=1000,
        ) as parts:
            parts.start()
            await until(lambda: _async(any(r.msg == "mqtt connect failed" for r in caplog.records)))
    finally:
        busy.stop()
    [failed] = [r for r in caplog.records if r.msg == "mqtt connect failed"]
    assert failed.__dict__["advice"] == "back_off"
    # An ordinary first failure waits the minimum (0.001 s); this one is drawn up to 1000 s.
    assert failed.__dict__["retry_in_s"] > 0.01
    assert busy.seen() == 1, "no second attempt during the long wait"


async def _async(value: bool) -> bool:
    return value


def test_a_daemon_configured_with_endpoints_reports_the_one_it_uses(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    dead = free_port()
    config = tmp_path / "edged.toml"
    config.write_text(
        f"""
[device]
site = "s1"
id = "k1"

[paths]
data_dir = "{tmp_path / "data"}"

[broker]
mode = "external"

[[broker.endpoints]]
host = "127.0.0.1"
port = {dead}

[[broker.endpoints]]
host = "127.0.0.1"
port = {mosquitto.port}

[link]
reconnect_min_s = 0.05
reconnect_max_s = 0.2

[cloud]
mode = "remote"
""",
        encoding="utf-8",
    )
    observer = Observer(mosquitto.host, mosquitto.port, [f"{ROOT}/state"]).start()
    daemon = DaemonProcess(config, tmp_path / "run")
    try:
        daemon.start()
        observer.wait_for(lambda seen: any(m.json()["body"]["online"] for m in seen))
        link = daemon.control("status")["link"]
    finally:
        daemon.kill()
        observer.stop()
    assert link["broker"] == f"127.0.0.1:{mosquitto.port}" and link["endpoint"] == 1
    [birth] = [m.json() for m in observer.snapshot() if m.json()["body"]["online"]]
    assert birth["body"]["broker"] == f"127.0.0.1:{mosquitto.port}"


def test_config_endpoints_need_an_external_broker_and_a_port() -> None:
    from pydantic import ValidationError

    from edged.config.models import Broker

    with pytest.raises(ValidationError, match="endpoints are for an external broker"):
        Broker(endpoints=[{"host": "mqtt-1", "port": 8883}])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="port"):
        Broker(mode="external", endpoints=[{"host": "mqtt-1"}])  # type: ignore[list-item]
    single = Broker(mode="external", host="mqtt.example", port=8883)
    assert [(e.host, e.port) for e in single.endpoint_list()] == [("mqtt.example", 8883)]


async def test_a_subscription_granted_below_qos_1_is_reported(tmp_path: Path) -> None:
    capped = RefusingBroker(0x00, grant_qos=0).start()
    try:
        async with link_parts(tmp_path, plain_settings(capped.port)) as parts:
            parts.router.ready()
            parts.start()
            await asyncio.wait_for(parts.link.subscribed.wait(), 10)
            status = await parts.link.status()
    finally:
        capped.stop()
    assert status["downgraded_subscriptions"] == parts.topics.subscriptions()
