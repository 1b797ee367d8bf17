"""A small async face over one paho-mqtt 2.x connection, driven by the asyncio loop.

paho's socket is registered with the loop (`add_reader`/`add_writer`) and its housekeeping
(`loop_misc`: keepalive pings, timeouts) runs on a one-second loop timer, so there is no
paho thread, no busy poll, and every paho callback runs on the loop thread that owns the
state. Only the blocking TCP connect and TLS handshake run in an executor.

One `MqttConnection` is one network session: it is never reconnected. The link builds a
fresh one for each attempt, so paho's in-memory session (which would re-send everything
it ever queued at once) is never reused; the outbox in SQLite is the session that counts.
Whatever kills the network side (socket error, keepalive timeout, an exception inside paho)
resolves `closed`, which is what the link's supervising loop waits on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from edged.link.buffered_socket import BufferedSocket

log = logging.getLogger("edged.link")

MISC_INTERVAL_S = 1.0
READ_BURST = 32
"""Packets read per turn of the event loop (see `MqttConnection._read`)."""
CONNACK_TIMEOUT_S = 10.0
SUBACK_TIMEOUT_S = 10.0
RECEIVE_MAXIMUM = 32
"""MQTT 5: at most this many unacknowledged downlink messages in flight towards us."""


class LinkConfigError(ValueError):
    """The broker settings cannot work (e.g. plain TCP where config forbids it)."""


class ServerAdvice(StrEnum):
    """What a broker's MQTT 5 reason code (CONNACK or DISCONNECT) asks the client to do."""

    NONE = "none"
    BACK_OFF = "back_off"
    """Server busy, quota exceeded, connection rate exceeded: come back later, not now."""
    MOVE = "move"
    """Use another server, server moved, shutting down, unavailable: try the next endpoint."""


_BACK_OFF_CODES = frozenset({0x89, 0x97, 0x9F})
_MOVE_CODES = frozenset({0x88, 0x8B, 0x9C, 0x9D})


def advice_for(reason: ReasonCode) -> ServerAdvice:
    if reason.value in _BACK_OFF_CODES:
        return ServerAdvice.BACK_OFF
    if reason.value in _MOVE_CODES:
        return ServerAdvice.MOVE
    return ServerAdvice.NONE


def server_reference(properties: Properties | None) -> str | None:
    """MQTT 5 Server Reference: where a broker that says "use another server" points."""
    value = getattr(properties, "ServerReference", None) if properties is not None else None
    return str(value) if value else None


class ConnectFailed(ConnectionError):
    """One connection attempt failed; `reason` says why in words an operator can act on."""

    def __init__(
        self,
        reason: str,
        *,
        handshake: bool = False,
        advice: ServerAdvice = ServerAdvice.NONE,
        reference: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.handshake = handshake
        """TCP (and TLS) worked but MQTT did not: the broker may not speak this version."""
        self.advice = advice
        self.reference = reference


class ConnectionLost(ConnectionError):
    """The connection is gone; nothing more can be sent on it."""


@dataclass(frozen=True)
class TlsSettings:
    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None
    check_hostname: bool = True


@dataclass(frozen=True)
class Endpoint:
    """One broker address; `server_name` is the name its TLS certificate carries when that
    is not `host` (an IP address, a node behind a load balancer)."""

    host: str
    port: int
    server_name: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ClientSettings:
    host: str
    port: int
    client_id: str
    server_name: str | None = None
    mqtt5: bool = True
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600
    inflight_window: int = 64
    connack_timeout_s: float = CONNACK_TIMEOUT_S
    username: str | None = None
    password: str | None = None
    tls: TlsSettings | None = None
    allow_plain_tcp: bool = True


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True)
class Incoming:
    """A message the broker delivered; `mid` is needed to acknowledge it after its effect."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    retain: bool
    response_topic: str | None = None
    correlation_data: bytes | None = None


MessageCallback = Callable[["MqttConnection", Incoming], None]
DeliveredCallback = Callable[[int, str | None], None]
"""(mid, failure): failure is None on success, else the broker's reason (MQTT 5 PUBACK)."""


class _NamedServerContext(ssl.SSLContext):
    """Verifies (and sends as SNI) `server_name` instead of the host paho connects to."""

    server_name: str

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(sock, *args, **kwargs)


def tls_context(tls: TlsSettings, server_name: str | None = None) -> ssl.SSLContext:
    """TLS 1.2 or newer, the broker verified against `ca_file`, our certificate when given.

    A file that vanished or broke since the config was checked is a LinkConfigError that
    names it, not a bare FileNotFoundError."""
    context: ssl.SSLContext
    try:
        if server_name:
            named = _NamedServerContext(ssl.PROTOCOL_TLS_CLIENT)
            named.server_name = server_name
            named.load_verify_locations(cafile=tls.ca_file)
            context = named
        else:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise LinkConfigError(f"broker.tls.ca_file {tls.ca_file}: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = tls.check_hostname
    if tls.cert_file:
        try:
            context.load_cert_chain(tls.cert_file, tls.key_file)
        except (OSError, ssl.SSLError) as exc:
            files = ", ".join(f for f in (tls.cert_file, tls.key_file) if f)
            raise LinkConfigError(f"broker.tls.cert_file/key_file {files}: {exc}") from None
    return context


class _Client(mqtt.Client):
    """paho's client with one hot path shortened: a PUBACK that says it was taken.

    A broker takes a QoS 1 publish with a PUBACK of Success (0x00) or No matching
    subscribers (0x10), mostly without properties (MQTT 5.0 section 3.4.2; in 3.1.1 it is
    always two bytes). paho decodes each one into a new ReasonCode and Properties, which
    copy and search paho's tables: a third of the event loop's time while a backlog drains
    (py-spy, `edged bench drain`). For exactly those forms this hands paho's own
    `_do_on_publish` a shared, equal pair instead; a refusal, a PUBACK with properties and
    every other packet go through paho as written. paho-mqtt is bounded to 2.x in
    pyproject.toml, and tests/link/test_puback.py pins each form with exact bytes.
    """

    def _handle_pubackcomp(self, cmd: Literal["PUBACK", "PUBCOMP"]) -> MQTTErrorCode:
        packet = self._in_packet["packet"]
        size = len(packet)
        if cmd == "PUBACK" and 2 <= size <= 4 and (size < 4 or packet[3] == 0):
            reason = _TAKEN.get(packet[2] if size > 2 else 0)
            if reason is not None:
                mid = (packet[0] << 8) | packet[1]
                with self._out_message_mutex:
                    if mid in self._out_messages:
                        return self._do_on_publish(mid, reason, _NO_PROPERTIES)
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._handle_pubackcomp(cmd)


_TAKEN = {code: ReasonCode(PacketTypes.PUBACK, identifier=code) for code in (0x00, 0x10)}
"""The PUBACK reasons that mean the broker took the message, shared by every PUBACK."""
_NO_PROPERTIES = Properties(PacketTypes.PUBACK)  # type: ignore[no-untyped-call]


class MqttConnection:
    def __init__(
        self,
        settings: ClientSettings,
        *,
        on_message: MessageCallback,
        on_delivered: DeliveredCallback,
        will: Will | None = None,
    ) -> None:
        if settings.tls is None and not settings.allow_plain_tcp:
            raise LinkConfigError(
                "broker.tls is not set and broker.allow_plain_tcp is false: refusing plain TCP"
            )
        self.settings = settings
        self._loop = asyncio.get_running_loop()
        self._on_message_cb = on_message
        self._on_delivered_cb = on_delivered
        self._connack: asyncio.Future[bool] = self._loop.create_future()
        self.closed: asyncio.Future[str] = self._loop.create_future()
        """Resolves with the reason once the connection is gone, whatever killed it."""
        self._subacks: dict[int, asyncio.Future[list[ReasonCode]]] = {}
        self._sock: socket.socket | None = None
        self._misc: asyncio.TimerHandle | None = None
        self._disconnect_reason = ""
        self.advice = ServerAdvice.NONE
        """Set when the broker ended the connection with a reason that asks for something."""
        self.server_reference: str | None = None
        self.downgraded: list[str] = []
        """Subscriptions the broker granted at a lower QoS than asked."""
        self.receive_maximum: int | None = None
        """MQTT 5: the broker's limit on our unacknowledged QoS 1 publishes (CONNACK)."""
        self._client = self._build_client(will)

    @property
    def mqtt5(self) -> bool:
        return self.settings.mqtt5

    # -- opening ----------------------------------------------------------------------

    def _build_client(self, will: Will | None) -> mqtt.Client:
        s = self.settings
        client = _Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if s.mqtt5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if s.mqtt5 else False,
            manual_ack=True,
        )
        client.suppress_exceptions = False
        # The pump keeps at most `inflight_window` messages with paho, so paho's own limit is
        # off: with it on, paho rescans all its in-flight messages on every PUBACK.
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        if s.username:
            client.username_pw_set(s.username, s.password)
        if s.tls is not None:
            client.tls_set_context(tls_context(s.tls, s.server_name))
            if not s.tls.check_hostname:
                client.tls_insecure_set(True)
        if will is not None:
            client.will_set(will.topic, will.payload, will.qos, will.retain)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    async def open(self) -> bool:
        """Connect and wait for CONNACK; returns whether the broker kept our session."""
        s = self.settings
        properties: Properties | None = None
        if s.mqtt5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = s.session_expiry_s
            properties.ReceiveMaximum = RECEIVE_MAXIMUM
        connect = partial(
            self._client.connect,
            s.host,
            s.port,
            s.keepalive_s,
            clean_start=False if s.mqtt5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        try:
            await self._loop.run_in_executor(None, connect)
        except ssl.SSLCertVerificationError as exc:
            raise ConnectFailed(
                f"TLS: broker certificate not trusted: {exc.verify_message}"
            ) from None
        except ssl.SSLError as exc:
            raise ConnectFailed(f"TLS handshake failed: {exc.reason or exc}") from None
        except (OSError, ValueError) as exc:
            raise ConnectFailed(f"cannot reach {s.host}:{s.port}: {exc}") from None
        self._attach()
        try:
            return await asyncio.wait_for(asyncio.shield(self._connack), s.connack_timeout_s)
        except TimeoutError:
            self._teardown("no CONNACK")
            raise ConnectFailed(
                f"no CONNACK from {s.host}:{s.port} in {s.connack_timeout_s} s", handshake=True
            ) from None
        except ConnectFailed:
            self._teardown("refused")
            raise

    def _attach(self) -> None:
        """Hand paho's socket to the loop; from here on every paho call runs on the loop."""
        sock = self._client.socket()
        if sock is None:
            raise ConnectFailed("paho returned no socket")
        self._sock = sock  # type: ignore[assignment]
        # paho reads and writes through the buffers (see buffered_socket); the loop watches
        # the real socket.
        self._buffered = BufferedSocket(sock)  # type: ignore[arg-type]
        self._client._sock = self._buffered
        self._writing = False
        self._client.on_socket_register_write = self._register_write
        self._client.on_socket_unregister_write = self._unregister_write
        self._client.on_socket_close = self._socket_closed
        self._loop.add_reader(sock, self._on_readable)
        if self._client.want_write():
            self._watch_writable(True)
        self._misc = self._loop.call_later(MISC_INTERVAL_S, self._tick)
        # A CONNACK or socket error that arrived before the reader was attached is still
        # buffered in the kernel, so the first read will see it.

    def _guarded(self, step: Callable[[], MQTTErrorCode]) -> None:
        """Run one paho step; any failure inside paho ends this connection, never silently."""
        try:
            rc = step()
        except Exception as exc:
            log.warning("mqtt network step failed", extra={"reason": f"{type(exc).__name__}"})
            self._teardown(f"paho failed: {type(exc).__name__}: {exc}")
            return
        if rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN):
            self._teardown(self._disconnect_reason or f"network: {mqtt.error_string(rc)}")

    def _read(self) -> MQTTErrorCode:
        """At most READ_BURST packets per turn of the loop, then let the shopper's work run.

        paho's `loop_read` reads as many packets as it has messages in flight (a whole
        window of PUBACKs, tens of milliseconds on a busy board) in one callback, which
        would hold a scan's display update behind it. This is the same loop, bounded; when
        it stops at the bound, more may be waiting in the kernel or in TLS's own buffer
        (where epoll cannot see it), so it asks to be called again on the next turn.
        """
        client = self._client
        for _ in range(READ_BURST):
            if client._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = client._packet_read()
            if rc > 0:
                return client._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        if not self.closed.done():
            self._loop.call_soon(self._on_readable)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _write(self) -> MQTTErrorCode:
        """Everything paho has queued, in one `send` (see buffered_socket)."""
        rc = self._client.loop_write()
        if self._sock is None:
            return rc
        self._buffered.flush()
        self._watch_writable(self._buffered.unsent > 0 or self._client.want_write())
        return rc

    def _watch_writable(self, wanted: bool) -> None:
        if wanted == self._writing or self._sock is None:
            return
        self._writing = wanted
        if wanted:
            self._loop.add_writer(self._sock, self._on_writable)
        else:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_writer(self._sock)

    def _on_readable(self) -> None:
        self._guarded(self._read)

    def _on_writable(self) -> None:
        self._guarded(self._write)

    def _tick(self) -> None:
        self._misc = None
        if self.closed.done():
            return
        self._guarded(self._client.loop_misc)
        if not self.closed.done():
            self._misc = self._loop.call_later(MISC_INTERVAL_S, self._tick)

    def _register_write(self, _client: mqtt.Client, _userdata: Any, _sock: Any) -> None:
        if not self.closed.done():
            self._watch_writable(True)

    def _unregister_write(self, _client: mqtt.Client, _userdata: Any, _sock: Any) -> None:
        # paho has handed everything to the buffer; `_write` stops watching once it is sent.
        pass

    def _socket_closed(self, _client: mqtt.Client, _userdata: Any, _sock: Any) -> None:
        # paho reports the reason in on_disconnect right after this; read it on the next turn.
        if not self._loop.is_closed():
            self._loop.call_soon(self._teardown, "socket closed")

    def _teardown(self, reason: str) -> None:
        if self._sock is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._sock)
                self._loop.remove_writer(self._sock)
            self._sock = None
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        if self._client.socket() is not None:
            with contextlib.suppress(Exception):
                self._client._sock_close()  # paho has no public "drop the socket now"
        # This connection is finished: paho must not call back into it (e.g. from __del__).
        self._client.on_socket_close = None
        self._client.on_socket_register_write = None
        self._client.on_socket_unregister_write = None
        final = self._disconnect_reason or reason
        if not self._connack.done():
            self._connack.set_exception(
                ConnectFailed(
                    f"connection closed before CONNACK: {final}",
                    handshake=True,
                    advice=self.advice,
                    reference=self.server_reference,
                )
            )
            self._connack.exception()  # mark retrieved: open() may already have given up
        for waiter in self._subacks.values():
            if not waiter.done():
                waiter.set_exception(ConnectionLost(final))
                waiter.exception()
        self._subacks.clear()
        if not self.closed.done():
            self.closed.set_result(final)

    # -- paho callbacks (all on the loop thread after _attach) -------------------------

    def _on_connect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self._connack.done():
            return
        limit = getattr(properties, "ReceiveMaximum", None) if properties is not None else None
        self.receive_maximum = int(limit) if limit else None
        if reason.is_failure:
            text = str(reason)
            unsupported = "protocol version" in text.lower()
            self._connack.set_exception(
                ConnectFailed(
                    f"broker refused: {text}",
                    handshake=unsupported,
                    advice=advice_for(reason),
                    reference=server_reference(properties),
                )
            )
        else:
            self._connack.set_result(bool(flags.session_present))

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._disconnect_reason = f"disconnected: {reason}"
        if reason.is_failure:
            self.advice = advice_for(reason)
            self.server_reference = server_reference(properties)

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        mid: int,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._on_delivered_cb(mid, str(reason) if reason.is_failure else None)

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        waiter = self._subacks.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(reasons)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        response_topic: str | None = None
        correlation: bytes | None = None
        props = msg.properties
        if props is not None:
            response_topic = getattr(props, "ResponseTopic", None)
            correlation = getattr(props, "CorrelationData", None)
        self._on_message_cb(
            self,
            Incoming(
                topic=msg.topic,
                payload=bytes(msg.payload),
                qos=msg.qos,
                mid=msg.mid,
                retain=bool(msg.retain),
                response_topic=response_topic,
                correlation_data=bytes(correlation) if correlation is not None else None,
            ),
        )

    # -- using an open connection --------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        correlation: bytes | None = None,
    ) -> int:
        """Queue one PUBLISH; returns its mid. Written when the socket is writable."""
        if self.closed.done():
            raise ConnectionLost(self.closed.result())
        properties: Properties | None = None
        if correlation is not None and self.settings.mqtt5:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.CorrelationData = correlation
        info = self._client.publish(topic, payload, qos, retain, properties)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise ConnectionLost(f"publish refused: {mqtt.error_string(info.rc)}")
        return info.mid

    def ack(self, message: Incoming) -> None:
        """Acknowledge a QoS 1 downlink once its effect is committed (manual ack)."""
        if message.qos > 0 and not self.closed.done():
            self._client.ack(message.mid, message.qos)

    async def subscribe(self, topics: list[str], qos: int = 1) -> None:
        if self.closed.done():
            raise ConnectionLost(self.closed.result())
        requests: list[tuple[str, Any]] = [
            (t, SubscribeOptions(qos=qos) if self.settings.mqtt5 else qos) for t in topics
        ]
        rc, mid = self._client.subscribe(requests)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise ConnectionLost(f"subscribe refused: {mqtt.error_string(rc)}")
        waiter: asyncio.Future[list[ReasonCode]] = self._loop.create_future()
        self._subacks[mid] = waiter
        reasons = await asyncio.wait_for(waiter, SUBACK_TIMEOUT_S)
        failed = [f"{t}: {r}" for t, r in zip(topics, reasons, strict=False) if r.is_failure]
        if failed:
            raise ConnectFailed(f"subscription refused: {'; '.join(failed)}")
        # A broker may grant less than asked (RabbitMQ grants QoS 1 for 2; a capped broker
        # may grant 0, which would drop commands while we are away): say so, loudly.
        self.downgraded = [
            t for t, r in zip(topics, reasons, strict=False) if not r.is_failure and r.value < qos
        ]
        if self.downgraded:
            log.error(
                "broker granted a lower QoS than asked",
                extra={"topics": self.downgraded, "asked": qos},
            )

    async def close(self, timeout_s: float = 1.0) -> None:
        """Send DISCONNECT (the broker then does not publish the will) and drop the socket."""
        if not self.closed.done():
            self._client.disconnect()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.closed), timeout_s)
        self._teardown("closed by us")
