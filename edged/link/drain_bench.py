"""The drain benchmark: outbox drain rate against raw paho-mqtt, measured in one run.

Raw: one paho client publishes N envelopes of the same size at QoS 1 and waits for every
PUBACK, once with the link's window and once with a much wider one; the faster is the
baseline, so the ratio is never flattered by a slow baseline.

Drain: an outbox in a fresh SQLite store (WAL, synchronous=FULL, as the daemon runs it)
holding a backlog of N messages is drained by the real link (connection, pump, marks) to
the same broker; the clock stops when every row's delivered mark is committed.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edged.contract.topics import DeviceTopics, Uplink
from edged.link.birth import BirthInfo
from edged.link.client import ClientSettings
from edged.link.downlink import DownlinkRouter, DownlinkVerifier
from edged.link.service import Link
from edged.runtime.clock import SystemClock
from edged.store import Store
from edged.store.inbox import Inbox
from edged.store.outbox import Outbox

FILL_BATCH = 5_000
RAW_WIDE_WINDOW = 4096
SAMPLE_BODY = {
    "sale_id": "0190f0c2-5b1e-7c3a-9d2e-1f2a3b4c5d6e",
    "total_fen": 2590,
    "lines": [
        {"barcode": "6901234567892", "name": "Green tea 500ml", "qty": 2, "unit_fen": 350},
        {"barcode": "6909876543210", "name": "Rice crackers", "qty": 1, "unit_fen": 1890},
    ],
    "payments": [{"method": "wechat", "trade_no": "K1-000123", "amount_fen": 2590}],
}


@dataclass(frozen=True)
class DrainResult:
    messages: int
    window: int
    raw_rate: float
    drain_rate: float

    @property
    def ratio(self) -> float:
        return self.drain_rate / self.raw_rate


class LocalMosquitto:
    """A throwaway Mosquitto on a free loopback port, for when no broker is given."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("mosquitto is not installed; pass --host/--port of a broker")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        conf = workdir / "mosquitto.conf"
        conf.write_text(
            f"persistence false\nlistener {self.port} 127.0.0.1\nallow_anonymous true\n"
            "max_inflight_messages 0\nmax_queued_messages 0\nlog_dest none\n"
        )
        self._process = subprocess.Popen([binary, "-c", str(conf)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        self._process.send_signal(signal.SIGTERM)
        self._process.wait(timeout=5)


def raw_paho_rate(host: str, port: int, payload: bytes, messages: int, inflight: int) -> float:
    """Messages per second from first PUBLISH to last PUBACK, at most `inflight` unacked.

    paho driven the plain way, one thread calling `loop()`: no asyncio, no SQLite. (paho's
    background thread with publishes from another thread lost PUBACKs under this load, and
    more than 65535 unacknowledged messages would reuse packet ids, so neither can serve
    as the baseline.)
    """
    acked = 0

    def on_publish(*_args: object) -> None:
        nonlocal acked
        acked += 1

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect(host, port, 60)
    while not client.is_connected():
        client.loop(1.0)
    topic = "bench/raw/evt/txn"
    sent = 0
    started = time.perf_counter()
    deadline = started + 600
    while acked < messages:
        while sent < messages and sent - acked < inflight:
            client.publish(topic, payload, qos=1)
            sent += 1
        client.loop(1.0)
        if time.perf_counter() > deadline:
            raise RuntimeError(f"raw publish stalled at {acked}/{messages} PUBACKs")
    elapsed = time.perf_counter() - started
    client.disconnect()
    return messages / elapsed


async def fill_backlog(store: Store, outbox: Outbox, messages: int) -> None:
    left = messages
    while left:
        batch = min(left, FILL_BATCH)
        async with store.transaction() as tx:
            for _ in range(batch):
                await outbox.add(tx, Uplink.TXN, "txn.completed", SAMPLE_BODY)
        left -= batch


BENCH_TOPICS = DeviceTopics("bench-site", "bench-kiosk")


def bench_link(store: Store, outbox: Outbox, host: str, port: int, window: int) -> Link:
    """The real link (connection, pump, marks) on `store`, as the daemon builds it."""
    topics = BENCH_TOPICS
    verifier = DownlinkVerifier(topics, [], store.clock, max_bytes=65536, max_clock_skew_s=300)
    router = DownlinkRouter(topics, store, Inbox(store), verifier)
    return Link(
        ClientSettings(host=host, port=port, client_id="edged-bench", inflight_window=window),
        topics=topics,
        store=store,
        outbox=outbox,
        router=router,
        birth=lambda: BirthInfo("bench", "bench"),
    )


async def drain_rate(host: str, port: int, messages: int, window: int, workdir: Path) -> float:
    clock = SystemClock()
    store = await Store.open(workdir / "bench.db", clock)
    try:
        outbox = Outbox(store, BENCH_TOPICS)
        await fill_backlog(store, outbox, messages)
        link = bench_link(store, outbox, host, port, window)
        started = time.perf_counter()
        task = asyncio.create_task(link.run())
        # The pump counts PUBACKs; the drain is done when all are acked and none is
        # waiting for its delivered mark. A 5 ms check costs nothing measurable.
        while link.pump.stats.delivered < messages or link.pump.in_flight:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        left = (await outbox.stats()).depth
        if left:
            raise RuntimeError(f"drain finished with {left} rows still undelivered")
        return messages / elapsed
    finally:
        await store.close()


def sample_payload() -> bytes:
    from edged.contract.envelope import make_envelope

    envelope = make_envelope(
        type="txn.completed",
        device="bench-kiosk",
        seq=1,
        body=SAMPLE_BODY,
        now=SystemClock().now(),
        clock_synced=True,
    )
    return envelope.to_bytes()


@contextmanager
def bench_broker(workdir: Path, host: str | None, port: int | None) -> Iterator[tuple[str, int]]:
    """The broker given, or a throwaway local Mosquitto when none is."""
    if host is not None:
        assert port is not None
        yield host, port
        return
    broker = LocalMosquitto(workdir)
    try:
        yield "127.0.0.1", broker.port
    finally:
        broker.stop()


def raw_baseline(host: str, port: int, messages: int, window: int) -> tuple[float, float]:
    """(rate, process CPU ms per message) of raw paho: the better of the link's window and
    a much larger one, so the ratio is never flattered by a slow baseline."""
    payload = sample_payload()
    runs = []
    for inflight in (window, RAW_WIDE_WINDOW):
        before = time.process_time()
        rate = raw_paho_rate(host, port, payload, messages, inflight)
        runs.append((rate, (time.process_time() - before) * 1000 / messages))
    return max(runs)


def run_drain_bench(
    messages: int, window: int, host: str | None = None, port: int | None = None
) -> DrainResult:
    with tempfile.TemporaryDirectory(prefix="edged-bench-") as tmp:
        workdir = Path(tmp)
        with bench_broker(workdir, host, port) as (host, port):
            raw, _cpu = raw_baseline(host, port, messages, window)
            drained = asyncio.run(drain_rate(host, port, messages, window, workdir))
    return DrainResult(messages, window, raw, drained)
