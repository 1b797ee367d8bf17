"""`edged bench fleet`: a rollout to N real daemon processes on one broker, and its rollback.

Each daemon is `edged run` in its own process with its own store, on simulated devices, all
trusting one operator key. The bench pushes a fleet layer and times until every device's
retained `cfg.state` says `applied`, then pushes one whose broker port is dead and times
until every device has `rolled_back` and is back online. It counts what each device
published (an independent subscriber on `edge/v1/#`) and reads each daemon's RSS.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edged.contract.bodies import BodyError, ConfigState, parse_body
from edged.contract.envelope import EnvelopeError, decode_envelope
from edged.fleetctl.broker import BrokerOptions, OperatorSession
from edged.fleetctl.keys import generate_key, load_key
from edged.fleetctl.messages import Scope, config_layer
from edged.link.drain_bench import LocalMosquitto

SITE = "bench"


@dataclass
class Watcher:
    """Counts every message per device and keeps each device's latest state and cfg state."""

    messages: Counter[str] = field(default_factory=Counter)
    online: dict[str, bool] = field(default_factory=dict)
    config: dict[str, ConfigState] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        parts = message.topic.split("/")
        if len(parts) < 5 or parts[3].startswith("_"):
            return
        device, kind = parts[3], "/".join(parts[4:])
        with self.lock:
            self.messages[device] += 1
        if kind not in ("state", "evt/cfg") or not message.payload:
            return
        try:
            envelope = decode_envelope(bytes(message.payload))
            with self.lock:
                if kind == "state":
                    self.online[device] = envelope.body.get("online") is True
                else:
                    self.config[device] = parse_body(ConfigState, envelope.body)
        except (EnvelopeError, BodyError):
            return

    def count(self, check: Callable[[str], bool], devices: list[str]) -> int:
        with self.lock:
            return sum(1 for device in devices if check(device))


def _config(folder: Path, device: str, port: int, public_key: str) -> Path:
    path = folder / f"{device}.toml"
    path.write_text(
        f"""
[device]
site = "{SITE}"
id = "{device}"

[paths]
data_dir = "{folder / device}"

[broker]
mode = "external"
port = {port}

[link]
reconnect_min_s = 0.5
reconnect_max_s = 5

[cloud]
mode = "remote"

[security]
trusted_keys = ["{public_key}"]

[health]
interval_s = 60
""",
        encoding="utf-8",
    )
    return path


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _wait(what: str, check: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(0.1)
    return time.monotonic() - started


def run_fleet_bench(daemons: int, grace_s: int, timeout_s: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="edged-fleet-bench-") as tmp:
        folder = Path(tmp)
        broker = LocalMosquitto(folder)
        key_file = folder / "operator.pem"
        public = generate_key(key_file)
        key = load_key(key_file)
        devices = [f"k{n:03d}" for n in range(daemons)]
        watcher = Watcher()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fleet-bench-watcher")
        client.on_message = watcher.on_message
        client.connect("127.0.0.1", broker.port)
        client.subscribe("edge/v1/#", qos=1)
        client.loop_start()
        processes: list[subprocess.Popen[bytes]] = []
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        try:
            for device in devices:
                config = _config(folder, device, broker.port, public)
                log = (folder / f"{device}.log").open("ab")
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "edged", "run", "--config", str(config)],
                        stdout=log,
                        stderr=log,
                        env=env,
                        cwd=folder,
                    )
                )
            up_s = _wait(
                "all online",
                lambda: watcher.count(lambda d: watcher.online.get(d, False), devices) == daemons,
                timeout_s,
            )
            rss = [_rss_mb(p.pid) for p in processes]
            options = BrokerOptions(port=broker.port)
            fleet = Scope.parse("fleet")

            def push(version: int, layer: dict[str, object]) -> None:
                envelope = config_layer(fleet, version, layer, key, grace_s=grace_s)
                with OperatorSession(options, f"fleet-bench-push-{version}") as session:
                    session.publish(fleet.topic, envelope.to_bytes(), retain=True)

            before = sum(watcher.messages.values())
            push(1, {"checkout": {"inactivity_timeout_s": 61}})
            applied_s = _wait(
                "all applied",
                lambda: (
                    watcher.count(
                        lambda d: (
                            (s := watcher.config.get(d)) is not None
                            and s.status.value == "applied"
                            and s.applied.fleet == 1
                        ),
                        devices,
                    )
                    == daemons
                ),
                timeout_s,
            )
            rollout_messages = sum(watcher.messages.values()) - before
            push(2, {"broker": {"port": _dead_port()}})
            rolled_s = _wait(
                "all rolled back and online",
                lambda: (
                    watcher.count(
                        lambda d: (
                            (s := watcher.config.get(d)) is not None
                            and s.status.value == "rolled_back"
                            and s.applied.fleet == 1
                            and watcher.online.get(d, False)
                        ),
                        devices,
                    )
                    == daemons
                ),
                timeout_s + grace_s,
            )
            rss_after = [_rss_mb(p.pid) for p in processes]
            per_device = [watcher.messages[d] for d in devices]
            return {
                "daemons": daemons,
                "all_online_s": round(up_s, 1),
                "rollout_applied_s": round(applied_s, 1),
                "rollout_messages_per_device": round(rollout_messages / daemons, 1),
                "rollback_s": round(rolled_s, 1),
                "grace_s": grace_s,
                "messages_per_device_total": {
                    "min": min(per_device),
                    "median": statistics.median(per_device),
                    "max": max(per_device),
                },
                "rss_mb_at_start": _spread(rss),
                "rss_mb_after_rollback": _spread(rss_after),
            }
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
            client.loop_stop()
            broker.stop()


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 1),
        "median": round(statistics.median(values), 1),
        "max": round(max(values), 1),
    }


def _dead_port() -> int:
    """A loopback port nothing listens on (bound, read, closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main_json(daemons: int, grace_s: int, timeout_s: float) -> int:
    print(json.dumps(run_fleet_bench(daemons, grace_s, timeout_s), indent=2))
    return 0
