"""mTLS and the per-device ACL, with the shipped Mosquitto templates and certificates made here."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edged.contract.topics import Uplink
from edged.link.client import Endpoint, LinkConfigError, MqttConnection, TlsSettings
from tests.link.helpers import Observer, link_parts, plain_settings
from tests.support.mosquitto import Mosquitto
from tests.support.ports import free_port

TEMPLATES = Path(__file__).resolve().parents[2] / "config" / "mosquitto"


@dataclass
class Pki:
    folder: Path
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate

    def path(self, name: str) -> str:
        return str(self.folder / name)

    def issue(
        self,
        name: str,
        common_name: str,
        *,
        server: bool = False,
        names: list[x509.GeneralName] | None = None,
    ) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    names
                    or [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
        cert = builder.sign(self.ca_key, hashes.SHA256())
        _write(self.folder / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM))
        _write(self.folder / f"{name}.key", _key_pem(key))


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def make_ca(folder: Path, name: str) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write(folder / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM))
    return Pki(folder, key, cert)


@dataclass
class TlsBroker:
    broker: Mosquitto
    pki: Pki
    wrong: Pki

    def device_tls(self, device: str, ca: str = "device-ca") -> TlsSettings:
        folder = self.pki if ca == "device-ca" else self.wrong
        return TlsSettings(
            ca_file=folder.path(f"{ca}.pem"),
            cert_file=self.pki.path(f"{device}.pem"),
            key_file=self.pki.path(f"{device}.key"),
        )

    def paho_tls(self, identity: str) -> Any:
        def apply(client: mqtt.Client) -> None:
            context = ssl.create_default_context(cafile=self.pki.path("device-ca.pem"))
            context.load_cert_chain(
                self.pki.path(f"{identity}.pem"), self.pki.path(f"{identity}.key")
            )
            client.tls_set_context(context)

        return apply


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsBroker]:
    yield from _tls_broker(tmp_path)


def _tls_broker(
    tmp_path: Path, broker_names: list[x509.GeneralName] | None = None
) -> Iterator[TlsBroker]:
    """Mosquitto configured from the shipped templates, only paths and port replaced."""
    folder = tmp_path / "pki"
    pki = make_ca(folder, "device-ca")
    pki.issue("broker", "localhost", server=True, names=broker_names)
    for identity in ("k1", "k2", "backend"):
        pki.issue(identity, identity)
    wrong = make_ca(tmp_path / "wrong", "other-ca")
    (folder / "edged.acl").write_text((TEMPLATES / "edged.acl").read_text())
    port = free_port()
    conf = (TEMPLATES / "edged-devices.conf").read_text()
    conf = conf.replace("/etc/mosquitto/edged/", f"{folder}/")
    conf = conf.replace("listener 8883", f"listener {port} 127.0.0.1")
    assert f"listener {port} 127.0.0.1" in conf and str(folder) in conf
    # As root, mosquitto would drop to its own user, which cannot read the test's files.
    broker = Mosquitto(tmp_path / "mosquitto", port=port, extra_config=f"user root\n{conf}")
    broker.start()
    yield TlsBroker(broker, pki, wrong)
    broker.stop()


async def test_mtls_connects_and_delivers(tmp_path: Path, tls_broker: TlsBroker) -> None:
    port = tls_broker.broker.port
    backend = Observer(
        "127.0.0.1", port, ["edge/v1/s1/k1/#"], tls=tls_broker.paho_tls("backend")
    ).start()
    try:
        settings = plain_settings(
            port, host="localhost", tls=tls_broker.device_tls("k1"), allow_plain_tcp=False
        )
        async with link_parts(tmp_path, settings) as parts:
            parts.router.ready()
            parts.start()
            await asyncio.wait_for(parts.link.subscribed.wait(), 10)
            [msg_id] = await parts.add(1, [Uplink.TXN])
            await backend.await_for(
                lambda seen: (
                    any(m.topic.endswith("/evt/txn") for m in seen)
                    and any(m.topic.endswith("/state") for m in seen)
                )
            )
            status = await parts.link.status()
            assert status["tls"] is True and status["connected"] is True
    finally:
        backend.stop()
    txn = [m for m in backend.snapshot() if m.topic.endswith("/evt/txn")]
    assert txn[0].json()["id"] == msg_id


NODE_NAME = "mqtt-2.shop.example"


@pytest.fixture
def named_tls_broker(tmp_path: Path) -> Iterator[TlsBroker]:
    """A cluster node whose certificate names it only by DNS name, reached by IP address."""
    yield from _tls_broker(tmp_path, [x509.DNSName(NODE_NAME)])


async def test_an_endpoints_server_name_is_what_its_certificate_is_checked_against(
    tmp_path: Path, named_tls_broker: TlsBroker
) -> None:
    port = named_tls_broker.broker.port
    tls = named_tls_broker.device_tls("k1")
    by_ip = plain_settings(port, tls=tls, allow_plain_tcp=False)
    async with link_parts(
        tmp_path / "unnamed", by_ip, endpoints=[Endpoint("127.0.0.1", port)]
    ) as parts:
        parts.start()
        for _ in range(100):
            if parts.link.last_error:
                break
            await asyncio.sleep(0.05)
        assert "certificate" in parts.link.last_error and "127.0.0.1" in parts.link.last_error
        assert not parts.link.connected.is_set()
    async with link_parts(
        tmp_path / "named", by_ip, endpoints=[Endpoint("127.0.0.1", port, NODE_NAME)]
    ) as parts:
        parts.start()
        await parts.connected()
        status = await parts.link.status()
    assert status["tls"] is True and status["broker"] == f"127.0.0.1:{port}"


async def test_a_backlog_drains_over_mtls_in_bounded_reads(
    tmp_path: Path, tls_broker: TlsBroker
) -> None:
    """Reads stop at a burst bound; what TLS has already decrypted must still be read."""
    port = tls_broker.broker.port
    backend = Observer(
        "127.0.0.1", port, ["edge/v1/s1/k1/evt/#"], tls=tls_broker.paho_tls("backend")
    ).start()
    try:
        settings = plain_settings(
            port,
            host="localhost",
            tls=tls_broker.device_tls("k1"),
            allow_plain_tcp=False,
            inflight_window=256,
        )
        async with link_parts(tmp_path, settings) as parts:
            ids = await parts.add(2000, [Uplink.TXN, Uplink.STOCK])
            parts.start()
            await backend.await_for(
                lambda seen: {m.json()["id"] for m in seen} >= set(ids), within_s=30
            )
            for _ in range(200):
                if (await parts.outbox.stats()).depth == 0:
                    break
                await asyncio.sleep(0.05)
            assert (await parts.outbox.stats()).depth == 0
    finally:
        backend.stop()


async def test_wrong_ca_fails_clearly_and_keeps_retrying(
    tmp_path: Path, tls_broker: TlsBroker
) -> None:
    settings = plain_settings(
        tls_broker.broker.port,
        host="localhost",
        tls=tls_broker.device_tls("k1", ca="other-ca"),
        allow_plain_tcp=False,
    )
    async with link_parts(tmp_path, settings) as parts:
        parts.start()
        for _ in range(100):
            if parts.link.last_error:
                break
            await asyncio.sleep(0.05)
        assert "certificate" in parts.link.last_error
        assert "TLS" in parts.link.last_error
        assert not parts.link.connected.is_set()
        assert parts.task is not None and not parts.task.done(), "a bad CA is retried, not fatal"


async def test_plain_tcp_is_refused_when_config_forbids_it() -> None:
    with pytest.raises(LinkConfigError, match="plain TCP"):
        MqttConnection(
            plain_settings(1883, allow_plain_tcp=False),
            on_message=lambda *_a: None,
            on_delivered=lambda *_a: None,
        )


class Device:
    """A raw MQTT 5 client with one device's certificate, to probe the ACL."""

    def __init__(self, broker: TlsBroker, identity: str) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=identity, protocol=MQTTProtocolVersion.MQTTv5
        )
        broker.paho_tls(identity)(self.client)
        self.suback: list[Any] = []
        self.puback: dict[int, Any] = {}
        self.received: list[str] = []
        self.done = threading.Condition()
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = lambda _c, _u, msg: self.received.append(msg.topic)
        self.client.connect("127.0.0.1", broker.broker.port)
        self.client.loop_start()

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, reasons: list[Any], _p: Any) -> None:
        with self.done:
            self.suback.extend(reasons)
            self.done.notify_all()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with self.done:
            self.puback[mid] = reason
            self.done.notify_all()

    def subscribe(self, topic: str) -> Any:
        count = len(self.suback)
        self.client.subscribe(topic, qos=1)
        with self.done:
            assert self.done.wait_for(lambda: len(self.suback) > count, 5)
            return self.suback[-1]

    def publish(self, topic: str) -> Any:
        info = self.client.publish(topic, b'{"probe":1}', qos=1)
        with self.done:
            assert self.done.wait_for(lambda: info.mid in self.puback, 5)
            return self.puback[info.mid]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_one_device_cannot_read_or_write_another_devices_topics(tls_broker: TlsBroker) -> None:
    """Judged by what arrives: Mosquitto may grant a wildcard subscription and then filter
    each message by read access, and may acknowledge a denied publish and then drop it."""
    watcher = Observer(
        "127.0.0.1", tls_broker.broker.port, ["edge/v1/#"], tls=tls_broker.paho_tls("backend")
    ).start()
    k1 = Device(tls_broker, "k1")
    k2 = Device(tls_broker, "k2")
    try:
        for topic in ("edge/v1/s1/k1/#", "edge/v1/+/k1/cmd/#", "edge/v1/#"):
            k2.subscribe(topic)
        assert not k1.subscribe("edge/v1/s1/k1/cmd/#").is_failure
        # Writes k2 must not be able to make: into k1's root, and commands to itself.
        for topic in ("edge/v1/s1/k1/evt/txn", "edge/v1/s1/k1/cmd/pay", "edge/v1/s1/k2/cmd/pay"):
            k2.publish(topic)
        # Traffic k2 must not be able to read: k1's commands and k1's events.
        watcher.publish("edge/v1/s1/k1/cmd/op", b"{}")
        k1.publish("edge/v1/s1/k1/evt/order")
        # What k2 may do: publish its own events (the marker that everything before arrived).
        k2.publish("edge/v1/s1/k2/evt/txn")
        watcher.wait_for(lambda seen: any(m.topic == "edge/v1/s1/k2/evt/txn" for m in seen))
        for _ in range(50):
            if k1.received:
                break
            threading.Event().wait(0.02)
        threading.Event().wait(0.2)
    finally:
        k1.stop()
        k2.stop()
        watcher.stop()
    topics = [m.topic for m in watcher.snapshot()]
    assert "edge/v1/s1/k1/evt/order" in topics, "k1 writes into its own root"
    assert "edge/v1/s1/k1/evt/txn" not in topics, "k2 wrote into k1's root"
    assert "edge/v1/s1/k1/cmd/pay" not in topics, "k2 wrote a command for k1"
    assert "edge/v1/s1/k2/cmd/pay" not in topics, "a device wrote a command to itself"
    assert k1.received == ["edge/v1/s1/k1/cmd/op"], "k1 reads its own commands"
    assert [t for t in k2.received if "/k1/" in t] == [], "k2 read k1's traffic"
