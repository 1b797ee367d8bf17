"""Connection behaviour: window, money first, paho failures, 3.1.1 fallback, health."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from edged.contract.bodies import HealthBody
from edged.contract.topics import Uplink
from edged.link.embedded_broker import EmbeddedBroker
from edged.link.health import HealthReporter, health_body
from edged.link.pump import MARK_BATCH, OutboxPump
from edged.store.outbox import Outbox
from tests.link.helpers import Observer, link_parts, plain_settings
from tests.support.daemon_process import DaemonProcess
from tests.support.mosquitto import Mosquitto
from tests.support.polling import until

ROOT = "edge/v1/s1/k1"


async def wait_until_drained(parts: Any, within_s: float = 20.0) -> None:
    for _ in range(int(within_s / 0.02)):
        if (await parts.outbox.stats()).depth == 0 and parts.link.pump.in_flight == 0:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"outbox not drained: {await parts.link.status()}")


async def test_pump_never_hands_paho_more_than_the_window(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = 8
    largest = {"pump": 0, "paho": 0}
    original = OutboxPump._publish

    def spy(self: OutboxPump, conn: Any, row: Any) -> None:
        largest["pump"] = max(largest["pump"], self.in_flight + 1)
        largest["paho"] = max(largest["paho"], len(conn._client._out_messages) + 1)
        original(self, conn, row)

    monkeypatch.setattr(OutboxPump, "_publish", spy)
    async with link_parts(
        tmp_path, plain_settings(mosquitto.port, inflight_window=window)
    ) as parts:
        await parts.add(500, [Uplink.TXN, Uplink.STOCK])
        parts.start()
        await wait_until_drained(parts)
        status = await parts.link.status()
    assert largest["pump"] == window, "the window is used, and never exceeded"
    # paho may also still hold the connection's birth (one retained `state`), never more.
    assert largest["paho"] <= window + 1
    assert status["delivered"] >= 500 and status["queue_depth"] == 0


BACKLOG = 12_000


async def test_money_drains_before_a_telemetry_backlog(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    observer = Observer(mosquitto.host, mosquitto.port, [f"{ROOT}/evt/#"]).start()
    try:
        async with link_parts(tmp_path, plain_settings(mosquitto.port)) as parts:
            # A backlog long enough that writing one row after the first 300 arrived is
            # certain to land mid-backlog: 2000 rows drained before the sale committed on
            # a fast machine, and that proved nothing.
            await parts.add(BACKLOG, [Uplink.HEALTH])
            early = await parts.add(20, [Uplink.TXN])
            parts.start()
            await observer.await_for(lambda seen: len(seen) >= 300)
            [late] = await parts.add(1, [Uplink.PAY])
            await wait_until_drained(parts)
            await observer.await_for(lambda seen: len(seen) >= BACKLOG + 21, within_s=30)
    finally:
        observer.stop()
    order = [json.loads(m.payload)["id"] for m in observer.snapshot()]
    assert order[:20] == early, "money written before the backlog goes first"
    health_after_late = len(order) - order.index(late) - 1
    assert health_after_late > BACKLOG // 2, "a sale written mid-backlog jumps ahead of telemetry"


async def test_a_failure_inside_paho_is_noticed_and_the_link_reconnects(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    backend = Observer(mosquitto.host, mosquitto.port, [f"{ROOT}/evt/#"]).start()
    try:
        async with link_parts(tmp_path, plain_settings(mosquitto.port)) as parts:
            parts.router.ready()
            parts.start()
            await asyncio.wait_for(parts.link.subscribed.wait(), 10)
            conn = parts.link._conn
            assert conn is not None

            def broken(*_args: Any, **_kwargs: Any) -> Any:
                raise RuntimeError("paho network thread died")

            conn._read = broken  # type: ignore[method-assign]
            backend.publish(f"{ROOT}/cmd/op", b"{}")  # makes the socket readable
            await asyncio.wait_for(conn.closed, 5)
            assert "paho network thread died" in conn.closed.result()
            [after] = await parts.add(1, [Uplink.TXN])
            await backend.await_for(lambda seen: any(m.json()["id"] == after for m in seen))
            assert parts.link.connects >= 2
    finally:
        backend.stop()


async def test_mqtt5_falls_back_to_311_against_the_embedded_broker(tmp_path: Path) -> None:
    broker = EmbeddedBroker("127.0.0.1", 0, wanted="amqtt")
    host, port = await broker.start()
    assert not broker.mqtt5
    try:
        async with link_parts(
            tmp_path, plain_settings(port, host=host, mqtt5=True, connack_timeout_s=1.0)
        ) as parts:
            await parts.add(50, [Uplink.TXN])
            parts.router.ready()
            parts.start()
            await wait_until_drained(parts)
            await asyncio.wait_for(parts.link.subscribed.wait(), 10)
            status = await parts.link.status()
    finally:
        await broker.stop()
    assert status["protocol"] == "mqtt311" and status["delivered"] >= 50


def health_reporter(parts: Any) -> HealthReporter:
    """The daemon's reporter on these parts alone: no store guard, devices or tasks."""

    async def body() -> HealthBody:
        return health_body(
            link_status=await parts.link.status(),
            store=parts.store,
            maintenance=None,
            devices=[],
            tasks=[],
        )

    return HealthReporter(parts.store, parts.outbox, 30, body)


async def test_health_reports_supersede_each_other_in_the_outbox(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    async with link_parts(tmp_path, plain_settings(mosquitto.port)) as parts:
        reporter = health_reporter(parts)
        await reporter.report()
        await reporter.report()
        rows = await parts.store.fetchall("SELECT topic, payload FROM outbox")
        assert [r["topic"] for r in rows] == [f"{ROOT}/evt/health"]
        report = json.loads(rows[0]["payload"])
        assert report["type"] == "health.report"
        assert report["body"]["queue_depth"] == 1  # the first, not yet superseded
        assert report["body"]["oldest_unsent_age_s"] >= 0
        assert report["body"]["broker"]["address"] == f"127.0.0.1:{mosquitto.port}"


async def test_a_health_report_never_supersedes_the_boot_record_on_its_topic(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    async with link_parts(tmp_path, plain_settings(mosquitto.port)) as parts:
        boot = {"boot_id": "b1", "version": "1", "previous_boot_id": None}
        async with parts.store.transaction() as tx:
            await parts.outbox.add(tx, Uplink.HEALTH, "device.boot", boot)
        reporter = health_reporter(parts)
        await reporter.report()
        await reporter.report()
        rows = await parts.store.fetchall("SELECT payload FROM outbox ORDER BY seq")
        assert [json.loads(r["payload"])["type"] for r in rows] == [
            "device.boot",
            "health.report",
        ]


@pytest.mark.parametrize(
    ("server", "protocol"), [("auto", "mqtt5"), ("amqtt", "mqtt311")], ids=["mosquitto", "amqtt"]
)
def test_daemon_with_no_broker_config_runs_the_embedded_broker(
    tmp_path: Path, server: str, protocol: str
) -> None:
    """Where Mosquitto is installed (as here) the development broker is Mosquitto, MQTT 5;
    amqtt, the fallback, speaks 3.1.1."""
    config = tmp_path / "dev.toml"
    config.write_text(
        f'[paths]\ndata_dir = "{tmp_path / "data"}"\n[broker]\nembedded_server = "{server}"\n',
        encoding="utf-8",
    )
    daemon = DaemonProcess(config, tmp_path / "run")
    try:
        daemon.start()
        link: dict[str, Any] = {}
        for _ in range(100):
            link = daemon.control("status")["link"]
            if link["subscribed"]:
                break
            asyncio.run(asyncio.sleep(0.05))
        assert link["connected"] and link["subscribed"]
        assert link["protocol"] == protocol
        assert link["broker"].startswith("127.0.0.1:") and not link["broker"].endswith(":0")
        code, stop_s = daemon.terminate()
        assert code == 0
        assert stop_s <= 2.0, f"SIGTERM -> exit took {stop_s:.2f} s with {server}"
    finally:
        daemon.kill()


async def test_a_window_of_pubacks_is_read_a_bounded_burst_per_turn_of_the_loop(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shopper's scan waits for at most one burst, not for a whole window of PUBACKs."""
    from edged.link.client import READ_BURST, MqttConnection

    bursts: list[int] = []
    original = MqttConnection._on_readable

    def counted(self: MqttConnection) -> None:
        reads = {"n": 0}
        packet_read = self._client._packet_read

        def one() -> Any:
            reads["n"] += 1
            return packet_read()

        self._client._packet_read = one  # type: ignore[method-assign]
        try:
            original(self)
        finally:
            self._client._packet_read = packet_read  # type: ignore[method-assign]
            bursts.append(reads["n"])

    monkeypatch.setattr(MqttConnection, "_on_readable", counted)
    async with link_parts(tmp_path, plain_settings(mosquitto.port, inflight_window=256)) as parts:
        await parts.add(3000, [Uplink.TXN])
        parts.start()
        await wait_until_drained(parts)
        status = await parts.link.status()
    assert status["delivered"] >= 3000 and status["queue_depth"] == 0
    # A burst reads READ_BURST packets, plus one more read that finds the socket empty.
    assert max(bursts) <= READ_BURST + 1
    assert max(bursts) == READ_BURST, "PUBACKs did queue up, and were read in bursts"


async def test_the_pump_publishes_nothing_while_a_fact_is_being_written(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    async with link_parts(tmp_path, plain_settings(mosquitto.port, inflight_window=256)) as parts:
        await parts.add(20_000, [Uplink.HEALTH])
        parts.start()
        pump = parts.link.pump.stats
        await until(lambda: pump.published >= 500, within_s=10, what="the drain under way")

        async with parts.store.transaction() as tx:  # a shopper's scan, say
            held_at = pump.published
            await tx.execute("INSERT INTO sequences (name, value) VALUES ('scan', 1)")
            await asyncio.sleep(0.05)  # the drain would publish ~1000 in this time
            assert pump.published == held_at, "not one publish while the fact was open"

        await until(lambda: pump.published > held_at, within_s=5, what="the drain resumes")
        await wait_until_drained(parts, within_s=60)


async def test_delivered_marks_commit_in_batches_a_shopper_can_wait_behind(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    original = Outbox.mark_delivered

    async def spy(self: Outbox, seqs: Sequence[int]) -> None:
        batches.append(len(seqs))
        await original(self, seqs)

    monkeypatch.setattr(Outbox, "mark_delivered", spy)
    async with link_parts(tmp_path, plain_settings(mosquitto.port, inflight_window=1024)) as parts:
        await parts.add(5000, [Uplink.TXN])
        parts.start()
        await wait_until_drained(parts)
    assert sum(batches) == 5000, "every row marked once"
    assert max(batches) == MARK_BATCH, "a full window of PUBACKs is split into batches"
