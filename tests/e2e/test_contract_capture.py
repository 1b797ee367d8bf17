"""Every message of a demo run, captured from a real Mosquitto by an independent client,
is valid against the AsyncAPI file's own JSON Schemas and travels with its channel's QoS
and retain flag: the contract the backend team builds against is what the device sends."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from edged.contract import asyncapi
from tests.support.mosquitto import Mosquitto


@dataclass(frozen=True)
class Captured:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Capture:
    """Subscribes to everything under edge/v1 with QoS 2 (so each message arrives with the
    QoS it was published with) and retain-as-published (so the retain flag is the sender's)."""

    def __init__(self, port: int) -> None:
        self.messages: list[Captured] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="contract-capture",
            protocol=MQTTProtocolVersion.MQTTv5,
        )  # fmt: skip
        client.on_connect = lambda c, *_a: c.subscribe(
            [("edge/v1/#", SubscribeOptions(qos=2, retainAsPublished=True))]
        )
        client.on_subscribe = lambda *_a: self._subscribed.set()
        client.on_message = self._on_message
        client.connect("127.0.0.1", port, 30)
        client.loop_start()
        self._client = client
        assert self._subscribed.wait(10), "capture client did not subscribe"

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Captured(msg.topic, bytes(msg.payload), msg.qos, msg.retain))

    def snapshot(self) -> list[Captured]:
        with self._lock:
            return list(self.messages)

    def wait_for_type(self, type_name: str, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if any(_type(m) == type_name for m in self.snapshot()):
                return
            time.sleep(0.05)
        raise TimeoutError(f"no {type_name} captured in {within_s} s")

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _type(message: Captured) -> str | None:
    try:
        value = json.loads(message.payload).get("type")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _channels(doc: dict[str, Any]) -> list[tuple[re.Pattern[str], dict[str, Any]]]:
    out = []
    for channel in doc["channels"].values():
        pattern = re.escape(channel["address"]).replace(r"\{site\}", "[^/]+")
        pattern = pattern.replace(r"\{device\}", "[^/]+").replace(r"\{request_id\}", "[^/]+")
        out.append((re.compile(f"^{pattern}$"), channel))
    return out


def contract_problems(doc: dict[str, Any], message: Captured) -> list[str]:
    """Why one captured message breaks the contract; empty when it keeps it."""
    channel = next((c for p, c in _channels(doc) if p.match(message.topic)), None)
    if channel is None:
        return [f"{message.topic}: no channel in the AsyncAPI file"]
    type_name = _type(message)
    by_name = {doc["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]["name"]: ref
               for ref in channel["messages"].values()}  # fmt: skip
    if type_name not in by_name:
        return [f"{message.topic}: type {type_name!r} is not documented on this channel"]
    message_id = by_name[type_name]["$ref"].rsplit("/", 1)[1]
    payload_ref = doc["components"]["messages"][message_id]["payload"]["$ref"]
    validator = jsonschema.Draft202012Validator(
        {"$ref": payload_ref, "components": doc["components"]}
    )
    problems = [
        f"{message.topic} {type_name}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(json.loads(message.payload))
    ]
    binding = channel["bindings"]["mqtt"]
    if message.qos != binding["qos"]:
        where = f"{message.topic} {type_name}"
        problems.append(f"{where}: QoS {message.qos}, contract {binding['qos']}")
    if message.retain != binding["retain"]:
        problems.append(f"{message.topic} {type_name}: retain {message.retain}")
    return problems


def test_a_demo_run_sends_only_what_the_asyncapi_file_documents(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    doc = json.loads(asyncapi.DOCUMENT.read_text(encoding="utf-8"))
    capture = Capture(mosquitto.port)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "edged", "demo", "--broker", f"127.0.0.1:{mosquitto.port}"],
            cwd=tmp_path, env={**os.environ, "TMPDIR": str(tmp_path)},
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        capture.wait_for_type("state.offline", within_s=5)
    finally:
        capture.stop()
    captured = capture.snapshot()
    problems = [p for m in captured for p in contract_problems(doc, m)]
    assert problems == [], "\n".join(problems)
    seen = {_type(m) for m in captured}
    assert seen >= {
        "state.online", "state.offline", "device.boot", "health.report", "pay.micropay",
        "pay.query", "pay.result", "txn.completed",
    }, seen  # fmt: skip


def test_the_check_catches_an_undocumented_type_a_stray_field_and_a_wrong_qos() -> None:
    doc = json.loads(asyncapi.DOCUMENT.read_text(encoding="utf-8"))
    root = "edge/v1/s1/k1"
    envelope = {"v": 1, "id": "0123456789ab", "device": "k1", "seq": 1,
                "ts": "2026-01-01T00:00:00.000Z", "clock_synced": True}  # fmt: skip
    boot = {"boot_id": "b-1", "version": "1", "previous_boot_id": None,
            "previous_shutdown": "none"}  # fmt: skip

    def msg(topic: str, type_name: str, body: dict[str, Any], qos: int = 0) -> Captured:
        payload = json.dumps({**envelope, "type": type_name, "body": body}).encode()
        return Captured(f"{root}/{topic}", payload, qos, False)

    assert contract_problems(doc, msg("evt/health", "device.boot", boot)) == []
    assert contract_problems(doc, msg("evt/health", "device.reboot", boot)) == [
        f"{root}/evt/health: type 'device.reboot' is not documented on this channel"
    ]
    stray = contract_problems(doc, msg("evt/health", "device.boot", {**boot, "link": {}}))
    assert len(stray) == 1 and "'link' was unexpected" in stray[0]
    assert contract_problems(doc, msg("evt/health", "device.boot", boot, qos=1)) == [
        f"{root}/evt/health device.boot: QoS 1, contract 0"
    ]
    assert contract_problems(doc, msg("evt/nope", "device.boot", boot)) == [
        f"{root}/evt/nope: no channel in the AsyncAPI file"
    ]
