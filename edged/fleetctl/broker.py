"""A blocking MQTT session for one operator command: connect, publish or listen, disconnect.

paho runs its network loop in its own thread; this wraps it in the three calls the fleet
commands need, each bounded by a timeout, with connection failures as one error type.
"""

from __future__ import annotations

import queue
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion


class BrokerError(ConnectionError):
    """The broker could not be reached, refused us, or did not acknowledge in time."""


@dataclass(frozen=True)
class BrokerOptions:
    host: str = "127.0.0.1"
    port: int = 1883
    mqtt311: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    timeout_s: float = 10.0


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retained: bool


class OperatorSession:
    def __init__(self, options: BrokerOptions, client_id: str) -> None:
        self._options = options
        self._connected = threading.Event()
        self._refused: str | None = None
        self._messages: queue.Queue[Received] = queue.Queue()
        self._acks: dict[int, threading.Event] = {}
        protocol = MQTTProtocolVersion.MQTTv311 if options.mqtt311 else MQTTProtocolVersion.MQTTv5
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol
        )
        if options.username:
            self._client.username_pw_set(options.username, options.password)
        if options.ca_file:
            context = ssl.create_default_context(cafile=str(options.ca_file))
            if options.cert_file:
                context.load_cert_chain(
                    str(options.cert_file), str(options.key_file or options.cert_file)
                )
            self._client.tls_set_context(context)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    def __enter__(self) -> OperatorSession:
        try:
            self._client.connect(self._options.host, self._options.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerError(
                f"cannot reach {self._options.host}:{self._options.port}: {exc}"
            ) from None
        self._client.loop_start()
        if not self._connected.wait(self._options.timeout_s) or self._refused:
            self._client.loop_stop()
            why = self._refused or "no CONNACK in time"
            raise BrokerError(f"broker {self._options.host}:{self._options.port}: {why}")
        return self

    def __exit__(self, *_exc: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1 and return once the broker acknowledged it."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        try:
            info.wait_for_publish(self._options.timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise BrokerError(f"publish to {topic} failed: {exc}") from None
        if not info.is_published():
            raise BrokerError(f"publish to {topic}: no PUBACK within {self._options.timeout_s} s")

    def subscribe(self, *filters: str) -> None:
        """Subscribe at QoS 1 and return once the broker acknowledged every filter."""
        result, mid = self._client.subscribe([(f, 1) for f in filters])
        if result != mqtt.MQTT_ERR_SUCCESS or mid is None:
            raise BrokerError(f"subscribe failed: {mqtt.error_string(result)}")
        done = self._acks.setdefault(mid, threading.Event())
        if not done.wait(self._options.timeout_s):
            raise BrokerError("subscribe: no SUBACK in time")

    def messages(self, deadline: float, quiet_s: float | None = None) -> Iterator[Received]:
        """Messages as they come, until `deadline` (monotonic), or `quiet_s` without one."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            wait = left if quiet_s is None else min(left, quiet_s)
            try:
                yield self._messages.get(timeout=wait)
            except queue.Empty:
                if quiet_s is not None or time.monotonic() >= deadline:
                    return

    # -- paho's thread ---------------------------------------------------------------------

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._refused = f"refused: {reason}"
        self._connected.set()

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, _codes: Any, _p: Any) -> None:
        self._acks.setdefault(mid, threading.Event()).set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._messages.put(Received(message.topic, bytes(message.payload), bool(message.retain)))
