"""What the link tests share: an independent MQTT observer, signed downlinks, an in-process link."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edged.contract.envelope import make_envelope
from edged.contract.signing import sign_envelope
from edged.contract.topics import DeviceTopics
from edged.link.birth import BirthInfo
from edged.link.client import ClientSettings, Endpoint
from edged.link.downlink import DownlinkRouter, DownlinkVerifier
from edged.link.service import Link
from edged.runtime.clock import Clock
from edged.store import Store
from edged.store.inbox import Inbox
from edged.store.outbox import Outbox

SITE = "s1"
DEVICE = "k1"


class FixedClock:
    """A controllable clock: tests decide the time and whether it is synced."""

    def __init__(self, now: datetime | None = None, synced: bool = True) -> None:
        self.current = now or datetime.now(UTC)
        self.is_synced = synced

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return time.monotonic()

    def synced(self) -> bool:
        return self.is_synced


@dataclass
class Seen:
    topic: str
    payload: bytes
    retain: bool
    correlation: bytes | None = None

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class Observer:
    """An independent subscriber on its own paho thread, as the cloud backend would be."""

    host: str
    port: int
    topics: list[str]
    client_id: str = ""
    persistent: bool = False
    tls: Callable[[mqtt.Client], None] | None = None
    username: str | None = None
    mqtt5: bool = True
    """False for a broker that speaks 3.1.1 only (RabbitMQ 3.10's MQTT plugin)."""
    messages: list[Seen] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _subscribed: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Observer:
        if self.mqtt5:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=MQTTProtocolVersion.MQTTv5,
            )
        else:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=MQTTProtocolVersion.MQTTv311,
                clean_session=not self.persistent,
            )
        if self.tls is not None:
            self.tls(client)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_subscribe = lambda *_a: self._subscribed.set()
        self._client = client
        props = None
        if self.persistent and self.mqtt5:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
        if self.mqtt5:
            client.connect(
                self.host, self.port, 30, clean_start=not self.persistent, properties=props
            )
        else:
            client.connect(self.host, self.port, 30)
        client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("observer did not subscribe")
        return self

    def _on_connect(self, client: mqtt.Client, *_args: Any) -> None:
        self._subscribed.clear()
        client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        correlation = getattr(msg.properties, "CorrelationData", None) if msg.properties else None
        with self._lock:
            self.messages.append(Seen(msg.topic, bytes(msg.payload), bool(msg.retain), correlation))

    def snapshot(self) -> list[Seen]:
        with self._lock:
            return list(self.messages)

    def wait_for(self, predicate: Callable[[list[Seen]], bool], within_s: float = 10.0) -> None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if predicate(self.snapshot()):
                return
            time.sleep(0.02)
        raise TimeoutError(f"observer condition not met; saw {len(self.snapshot())} messages")

    async def await_for(
        self, predicate: Callable[[list[Seen]], bool], within_s: float = 10.0
    ) -> None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if predicate(self.snapshot()):
                return
            await asyncio.sleep(0.02)
        raise TimeoutError(f"observer condition not met; saw {len(self.snapshot())} messages")

    def publish(self, topic: str, payload: bytes, qos: int = 1, **kwargs: Any) -> None:
        self._client.publish(topic, payload, qos, **kwargs).wait_for_publish(5)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def signed_downlink(
    key: Ed25519PrivateKey,
    *,
    type: str = "op.reprint",
    device: str = DEVICE,
    body: dict[str, Any] | None = None,
    now: datetime | None = None,
    ttl: timedelta | None = timedelta(minutes=5),
    id: str | None = None,
    sign: bool = True,
) -> bytes:
    envelope = make_envelope(
        type=type,
        device=device,
        seq=1,
        body=body or {"n": 1},
        now=now or datetime.now(UTC),
        clock_synced=True,
        ttl=ttl,
        id=id,
    )
    if sign:
        envelope = sign_envelope(envelope, key)
    return envelope.to_bytes()


@dataclass
class LinkParts:
    store: Store
    outbox: Outbox
    router: DownlinkRouter
    link: Link
    topics: DeviceTopics
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.link.run())

    async def connected(self, within_s: float = 10.0) -> None:
        await asyncio.wait_for(self.link.connected.wait(), within_s)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None

    async def add(self, n: int, kinds: list[Any], type: str = "test.msg") -> list[str]:
        """Write n outbox rows, cycling over kinds, in a few transactions; returns ids."""
        ids: list[str] = []
        async with self.store.transaction() as tx:
            for i in range(n):
                env = await self.outbox.add(tx, kinds[i % len(kinds)], type, {"i": i})
                ids.append(env.id)
        return ids


@asynccontextmanager
async def link_parts(
    tmp_path: Path,
    settings: ClientSettings,
    *,
    trusted: list[Any] | None = None,
    clock: Clock | None = None,
    reconnect_min_s: float = 0.1,
    reconnect_max_s: float = 0.5,
    endpoints: list[Endpoint] | None = None,
) -> AsyncIterator[LinkParts]:
    clock = clock or FixedClock()
    topics = DeviceTopics(SITE, DEVICE)
    store = await Store.open(tmp_path / "edged.db", clock)
    outbox = Outbox(store, topics)
    verifier = DownlinkVerifier(
        topics, trusted or [], clock, max_bytes=64 * 1024, max_clock_skew_s=300
    )
    router = DownlinkRouter(topics, store, Inbox(store), verifier)
    link = Link(
        settings,
        topics=topics,
        store=store,
        outbox=outbox,
        router=router,
        birth=lambda: BirthInfo("boot-test", "0.0.0", ["printer"]),
        reconnect_min_s=reconnect_min_s,
        reconnect_max_s=reconnect_max_s,
        endpoints=endpoints or (),
    )
    parts = LinkParts(store, outbox, router, link, topics)
    try:
        yield parts
    finally:
        await parts.stop()
        await store.close()


def plain_settings(port: int, **overrides: Any) -> ClientSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "client_id": f"edged-{SITE}-{DEVICE}",
        "inflight_window": 16,
        "keepalive_s": 5,
    }
    values.update(overrides)
    return ClientSettings(**values)


def first_seen_in_order(seen: list[Seen], order: dict[str, int]) -> dict[str, list[int]]:
    """Per topic, the order numbers of each message id at its first arrival."""
    per_topic: dict[str, list[int]] = {}
    firsts: set[str] = set()
    for message in seen:
        msg_id = message.json()["id"]
        if msg_id in firsts or msg_id not in order:
            continue
        firsts.add(msg_id)
        per_topic.setdefault(message.topic, []).append(order[msg_id])
    return per_topic


KNOWN_REASONS = {
    "oversized",
    "misaddressed",
    "malformed",
    "unsigned",
    "forged",
    "no_expiry",
    "expired",
    "replayed",
}
"""Every reason a downlink message may be refused for: what the fuzzers accept, no other."""
