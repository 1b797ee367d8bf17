"""The simulated backend on the wire: a paho-mqtt client that subscribes to every device's uplink.

It is a separate component (its own process with `edged cloudsim`, or a thread inside the
demo and tests) and speaks only the MQTT contract, so the daemon cannot tell it from the real
mini-program backend. With `shared=True` it subscribes as `$share/backend/...`, the way a
clustered backend scales; replies go to each device's `cmd/pay` at QoS 1.

Like a real backend it keeps a persistent session (MQTT 5 clean_start=False with a session
expiry; 3.1.1 clean_session=False), so a request published while it was disconnected is
delivered when it comes back instead of being missed.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edged.cloudsim.backend import Backend, Outgoing
from edged.cloudsim.keys import ensure_keys
from edged.cloudsim.orders import PlacedOrder
from edged.cloudsim.scenarios import Settings
from edged.contract.topics import DeviceTopics, backend_uplink_filter

log = logging.getLogger("edged.cloudsim")

TICK_S = 0.1
"""How often scheduled native-QR payments are checked (in the simulator's own thread)."""
SESSION_EXPIRY_S = 24 * 3600
"""How long the broker keeps the backend's subscriptions and queued requests while it is away."""


class CloudSim:
    def __init__(
        self,
        host: str,
        port: int,
        keys_dir: Path,
        settings: Settings | None = None,
        *,
        mqtt5: bool = True,
        shared: bool = False,
        client_id: str = "edged-cloudsim",
    ) -> None:
        self.backend = Backend(ensure_keys(keys_dir), settings)
        self.lock = threading.Lock()
        self._host = host
        self._port = port
        self._filter = ("$share/backend/" if shared else "") + backend_uplink_filter()
        self._subscribed = threading.Event()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._mqtt5 = mqtt5
        self._held: list[tuple[str, bytes]] | None = None
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if mqtt5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if mqtt5 else False,
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(1, 5)

    @property
    def settings(self) -> Settings:
        return self.backend.settings

    def start(self, timeout: float = 10.0) -> None:
        """Connect, subscribe, and return once the subscription is acknowledged."""
        if self._mqtt5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            self._client.connect_async(
                self._host, self._port, keepalive=30, clean_start=False, properties=properties
            )
        else:
            self._client.connect_async(self._host, self._port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise ConnectionError(f"simulated cloud: no broker at {self._host}:{self._port}")
        self._ticker = threading.Thread(target=self._tick, name="cloudsim-ticker", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        self._client.disconnect()
        self._client.loop_stop()
        if self._ticker is not None:
            self._ticker.join(timeout=2)

    def publish(self, topic: str, payload: bytes) -> None:
        """Send raw bytes to a topic (tests use this to forge and replay messages)."""
        self._client.publish(topic, payload, qos=1).wait_for_publish(5)

    def hold(self) -> None:
        """Stop answering (messages are kept): a backend outage, for fault tests."""
        with self.lock:
            self._held = []

    def release(self) -> None:
        """Answer again, starting with everything that arrived while held."""
        with self.lock:
            held, self._held = self._held or [], None
        for topic, payload in held:
            self._on_payload(topic, payload)

    def create_order(self, device: DeviceTopics, **options: Any) -> PlacedOrder:
        """Place a paid mini-program order at `device` (signed `cmd/order` order.created);
        the shopper's 6-digit code is on the returned order."""
        with self.lock:
            order, signed = self.backend.desk.place(device, **options)
        self.publish(signed.topic, signed.payload)
        return order

    def cancel_order(self, order_id: str) -> None:
        with self.lock:
            signed = self.backend.desk.cancel(order_id)
        self.publish(signed.topic, signed.payload)

    def pickup_token(self, order_id: str, **options: Any) -> str:
        """The text of the order's pickup QR (`ttl_s`, or `device` for another device's)."""
        with self.lock:
            return self.backend.desk.pickup_token(order_id, **options)

    def order_statuses(self, order_id: str) -> list[str]:
        with self.lock:
            order = self.backend.desk.orders.get(order_id)
            return [] if order is None else list(order.statuses)

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return self.backend.summary()

    # -- paho callbacks (paho's thread) ---------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("cloudsim connect refused", extra={"reason": str(reason)})
            return
        client.subscribe(self._filter, qos=1)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, _codes: Any, _p: Any) -> None:
        self._subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._on_payload(message.topic, bytes(message.payload))

    def _on_payload(self, topic: str, payload: bytes) -> None:
        with self.lock:
            if self._held is not None:
                self._held.append((topic, payload))
                return
            replies = self.backend.handle(topic, payload)
        self._send(replies)

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            with self.lock:
                replies = [] if self._held is not None else self.backend.due()
            self._send(replies)

    def _send(self, replies: list[Outgoing]) -> None:
        for reply in replies:
            self._client.publish(reply.topic, reply.payload, qos=1)
