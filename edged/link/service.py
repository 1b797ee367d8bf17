"""The link: one supervised loop that keeps a connection to the broker and uses it.

Each connection: CONNECT with the will (retained offline state) and a persistent session
(MQTT 5 clean_start=False plus session expiry; 3.1.1 clean_session=False), the retained
birth, subscriptions (re-made on every connection, whatever the broker remembered), the
outbox pump, and downlink messages acknowledged only after their effect committed.

When the connection dies for any reason, the loop notices (`MqttConnection.closed`), waits
a backoff delay with full jitter, and builds a new one. Only a broken configuration or a
failing store ends `run()`, which, as a core task, stops the daemon for systemd to restart.

Endpoints: the broker may be several addresses (cluster nodes, regions). The link stays on
the endpoint that works; a failed attempt moves to the next one in the configured order
(wrapping round), and so does a broker that says "use another server", "server moved" or
"shutting down" (MQTT 5), to the endpoint its Server Reference names when that is one of
ours. "Server busy", "quota exceeded" and "connection rate exceeded" draw the next delay
over the whole back-off window at once, so a fleet told to wait does not come back in step.
The backoff resets only after a connection has lasted `stable_after_s`: a broker that
accepts and drops at once is retried ever more slowly, not hammered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from edged.contract.envelope import make_envelope
from edged.contract.topics import DeviceTopics, Uplink
from edged.link.birth import BirthSource, StateMessages, state_messages
from edged.link.client import (
    ClientSettings,
    ConnectFailed,
    ConnectionLost,
    Endpoint,
    Incoming,
    MqttConnection,
    ServerAdvice,
)
from edged.link.downlink import DownlinkRouter, StoreUnavailable
from edged.link.pump import OutboxPump
from edged.runtime.backoff import Backoff
from edged.store.database import Store
from edged.store.outbox import Outbox

log = logging.getLogger("edged.link")

STABLE_CONNECTION_S = 10.0
"""A connection that lived this long resets the reconnect backoff."""
MAX_DOWNLINK_BACKLOG = 256
"""Downlink messages waiting for their transaction; beyond this they stay unacknowledged."""


class Link:
    def __init__(
        self,
        settings: ClientSettings,
        *,
        topics: DeviceTopics,
        store: Store,
        outbox: Outbox,
        router: DownlinkRouter,
        birth: BirthSource,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 60.0,
        page_size: int | None = None,
        endpoints: Sequence[Endpoint] = (),
        stable_after_s: float = STABLE_CONNECTION_S,
    ) -> None:
        self._endpoints = list(endpoints) or [
            Endpoint(settings.host, settings.port, settings.server_name)
        ]
        self._index = 0
        self._stable_after_s = stable_after_s
        self.settings = self._on_endpoint(settings, 0)
        self._configured = self.settings
        self._topics = topics
        self._store = store
        self._outbox = outbox
        self._router = router
        self._birth = birth
        self._backoff = Backoff(reconnect_min_s, reconnect_max_s)
        self._store_backoff = Backoff(0.2, 5.0)
        self.pump = OutboxPump(outbox, settings.inflight_window, page_size)
        self._downlink: deque[tuple[MqttConnection, Incoming]] = deque()
        self._downlink_ready = asyncio.Event()
        self._conn: MqttConnection | None = None
        self.connected = asyncio.Event()
        self.subscribed = asyncio.Event()
        """Set while the current connection holds its downlink subscriptions."""
        self.connects = 0
        self.last_error = ""
        self.downgraded: list[str] = []
        """Downlink topics the broker granted below QoS 1 on the last connection."""

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self.pump.run_marker(), name="link:marker"),
            asyncio.create_task(self._consume_downlink(), name="link:downlink"),
            asyncio.create_task(self._connect_forever(), name="link:connection"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # re-raise the first failure as itself, not as a group
            raise RuntimeError("link task ended unexpectedly")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.pump.flush()

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint in use, or the one the next attempt goes to."""
        return self._endpoints[self._index]

    def _on_endpoint(self, settings: ClientSettings, index: int) -> ClientSettings:
        endpoint = self._endpoints[index]
        return replace(
            settings, host=endpoint.host, port=endpoint.port, server_name=endpoint.server_name
        )

    def _next_endpoint(self, reference: str | None) -> int:
        """The endpoint after the current one, or the one a Server Reference names."""
        if reference:
            for address in reference.split():  # MQTT 5: space-separated, the first preferred
                for index, endpoint in enumerate(self._endpoints):
                    if address in (endpoint.address, endpoint.host, endpoint.server_name):
                        return index
            log.warning(
                "broker pointed to a server that is not configured; trying the next endpoint",
                extra={"reference": reference[:200]},
            )
        return (self._index + 1) % len(self._endpoints)

    def _move(self, settings: ClientSettings, reference: str | None) -> ClientSettings:
        self._index = self._next_endpoint(reference)
        return self._on_endpoint(settings, self._index)

    async def _connect_forever(self) -> None:
        loop = asyncio.get_running_loop()
        settings = self.settings
        while True:
            self.settings = settings
            try:
                state = await state_messages(
                    self._store, self._topics, self._birth(), self.endpoint.address
                )
                conn = MqttConnection(
                    settings,
                    on_message=self._received,
                    on_delivered=self.pump.delivered,
                    will=state.will(),
                )
                session_present = await conn.open()
            except ConnectFailed as exc:
                if exc.handshake and settings.mqtt5:
                    # Brokers without MQTT 5 refuse it, hang, or hang up: try 3.1.1 at once,
                    # and keep it for this run only if it works.
                    log.warning(
                        "MQTT 5 handshake failed; trying 3.1.1", extra={"reason": exc.reason}
                    )
                    settings = self.settings = replace(settings, mqtt5=False)
                    continue
                settings = self._move(
                    replace(settings, mqtt5=self._configured.mqtt5), exc.reference
                )
                await self._pause("mqtt connect failed", exc.reason, exc.advice)
                continue
            self.connects += 1
            started = loop.time()
            log.info(
                "mqtt connected",
                extra={
                    "broker": f"{settings.host}:{settings.port}",
                    "protocol": "mqtt5" if settings.mqtt5 else "mqtt311",
                    "session_present": session_present,
                    "backlog_in_flight": self.pump.in_flight,
                },
            )
            reason = await self._serve(conn, state)
            if loop.time() - started >= self._stable_after_s:
                self._backoff.reset()
            if conn.advice is ServerAdvice.MOVE:
                settings = self._move(settings, conn.server_reference)
            await self._pause("mqtt connection lost", reason, conn.advice)

    async def _pause(
        self, event: str, reason: str, advice: ServerAdvice = ServerAdvice.NONE
    ) -> None:
        self.last_error = reason
        delay = self._backoff.next_delay(widest=advice is ServerAdvice.BACK_OFF)
        log.warning(
            event,
            extra={
                "reason": reason,
                "advice": str(advice),
                "next_broker": self.endpoint.address,
                "retry_in_s": round(delay, 2),
            },
        )
        await asyncio.sleep(delay)

    async def _serve(self, conn: MqttConnection, state: StateMessages) -> str:
        """Use one connection until it dies; returns why. Cancelled: says offline first."""
        try:
            conn.publish(state.topic, state.birth.to_bytes(), 1, True)
        except ConnectionLost as lost:  # it died right after CONNACK (a server DISCONNECT)
            await conn.close()
            return conn.closed.result() if conn.closed.done() else str(lost)
        self._conn = conn
        self.connected.set()
        tasks = {
            asyncio.create_task(self.pump.serve(conn), name="link:pump"),
            asyncio.create_task(self._subscribe(conn), name="link:subscribe"),
        }
        try:
            while True:
                waiting: set[asyncio.Future[Any]] = {*tasks, conn.closed}
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if conn.closed.done():
                    return conn.closed.result()
                for task in done:
                    tasks.discard(task)
                    exc = task.exception()
                    if isinstance(exc, ConnectionLost | ConnectFailed | TimeoutError):
                        await conn.close()
                        return str(exc) or type(exc).__name__
                    if exc is not None:
                        raise exc
        except asyncio.CancelledError:
            # Stopping cleanly: the will is not sent on DISCONNECT, so say offline ourselves.
            with contextlib.suppress(ConnectionLost):
                conn.publish(state.topic, state.offline.to_bytes(), 1, True)
            await conn.close()
            raise
        finally:
            self.connected.clear()
            self.subscribed.clear()
            self._conn = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _subscribe(self, conn: MqttConnection) -> None:
        """Subscribe once the daemon has registered its handlers (router ready)."""
        await self._router.accepting.wait()
        await conn.subscribe(self._topics.subscriptions(), qos=1)
        self.downgraded = conn.downgraded
        self.subscribed.set()

    # -- downlink -------------------------------------------------------------------------

    def _received(self, conn: MqttConnection, message: Incoming) -> None:
        if len(self._downlink) >= MAX_DOWNLINK_BACKLOG:
            # Not acknowledged: the broker keeps it for the next session.
            self._router.stats.rejected["overload"] += 1
            return
        self._downlink.append((conn, message))
        self._downlink_ready.set()

    async def _consume_downlink(self) -> None:
        """One at a time, in arrival order, so PUBACKs go out in the order MQTT requires."""
        while True:
            await self._downlink_ready.wait()
            self._downlink_ready.clear()
            while self._downlink:
                conn, message = self._downlink[0]
                if not await self._deliver_one(message):
                    continue  # the store could not take it: the same message again
                self._downlink.popleft()
                conn.ack(message)

    async def _deliver_one(self, message: Incoming) -> bool:
        """True once the message is applied or rejected (and may be acknowledged); False
        after a pause when the store could not take its transaction (disk full, I/O)."""
        try:
            await self._router.deliver(
                message.topic,
                message.payload,
                retained=message.retain,
                response_topic=message.response_topic,
                correlation_data=message.correlation_data,
            )
        except StoreUnavailable as exc:
            self._router.stats.store_unavailable += 1
            delay = self._store_backoff.next_delay()
            log.error(
                "downlink waits for the store",
                extra={"reason": str(exc), "topic": message.topic, "retry_in_s": round(delay, 2)},
            )
            await asyncio.sleep(delay)
            return False
        self._store_backoff.reset()
        return True

    # -- telemetry ------------------------------------------------------------------------

    def publish_direct(self, kind: Uplink, type: str, body: dict[str, Any]) -> bool:
        """Publish telemetry at QoS 0 without the outbox: only for a report the store could
        not take (disk full). Its `seq` is 0, outside the store's sequence. True if sent."""
        conn = self._conn
        if kind is not Uplink.HEALTH or conn is None or not self.connected.is_set():
            return False
        clock = self._store.clock
        envelope = make_envelope(
            type=type,
            device=self._topics.device,
            seq=0,
            body=body,
            now=clock.now(),
            clock_synced=clock.synced(),
        )
        try:
            conn.publish(self._topics.uplink(kind), envelope.to_bytes(), 0, False)
        except ConnectionLost:
            return False
        return True

    async def status(self) -> dict[str, Any]:
        stats = await self._outbox.stats()
        pump = self.pump.stats
        return {
            "connected": self.connected.is_set(),
            "subscribed": self.subscribed.is_set(),
            "broker": f"{self.settings.host}:{self.settings.port}",
            "endpoint": self._index,
            "endpoints": [endpoint.address for endpoint in self._endpoints],
            "protocol": "mqtt5" if self.settings.mqtt5 else "mqtt311",
            "tls": self.settings.tls is not None,
            "connects": self.connects,
            "downgraded_subscriptions": list(self.downgraded),
            "last_error": self.last_error,
            "queue_depth": stats.depth,
            "oldest_undelivered_age_s": round(stats.oldest_age_s(self._store.clock.now()), 1),
            "delivered_retained_rows": stats.delivered,
            "in_flight": self.pump.in_flight,
            "window": self.pump.window,
            "published": pump.published,
            "delivered": pump.delivered,
            "broker_rejected": pump.broker_rejected,
            "unpublishable": pump.unpublishable,
            "downlink": self._router.stats.as_dict(),
        }
