"""The daemon as a real process against a real Mosquitto: SIGKILL mid-drain, birth and will."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from edged.contract.topics import DeviceTopics, Uplink
from edged.runtime.clock import SystemClock
from edged.store import Store
from edged.store.outbox import Outbox
from tests.link.helpers import DEVICE, SITE, Observer, Seen
from tests.support.daemon_process import DaemonProcess
from tests.support.mosquitto import Mosquitto

ROOT = f"edge/v1/{SITE}/{DEVICE}"
WINDOW = 32
BACKLOG = 8000
CRASHES = 3


def write_config(tmp_path: Path, port: int, window: int = WINDOW) -> Path:
    config = tmp_path / "edged.toml"
    config.write_text(
        f"""
[device]
site = "{SITE}"
id = "{DEVICE}"

[paths]
data_dir = "{tmp_path / "data"}"

[broker]
mode = "external"
host = "127.0.0.1"
port = {port}
protocol = "mqtt5"
keepalive_s = 5

[link]
inflight_window = {window}
reconnect_min_s = 0.1
reconnect_max_s = 0.5

[cloud]
mode = "remote"
""",
        encoding="utf-8",
    )
    return config


async def fill_backlog(data_dir: Path, n: int) -> list[str]:
    store = await Store.open(data_dir / "edged.db", SystemClock())
    try:
        outbox = Outbox(store, DeviceTopics(SITE, DEVICE))
        ids: list[str] = []
        kinds = [Uplink.TXN, Uplink.PAY, Uplink.ORDER]
        async with store.transaction() as tx:
            for i in range(n):
                envelope = await outbox.add(tx, kinds[i % 3], "test.msg", {"i": i})
                ids.append(envelope.id)
        return ids
    finally:
        await store.close()


def unique_ids(seen: list[Seen], wanted: set[str]) -> set[str]:
    return {m.json()["id"] for m in seen} & wanted


def test_sigkill_mid_drain_loses_nothing_and_duplicates_stay_within_the_window(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    config = write_config(tmp_path, mosquitto.port)
    ids = asyncio.run(fill_backlog(tmp_path / "data", BACKLOG))
    wanted = set(ids)
    observer = Observer(mosquitto.host, mosquitto.port, [f"{ROOT}/evt/#"]).start()
    daemon = DaemonProcess(config, tmp_path / "run")
    try:
        for crash in range(CRASHES):
            before = len(unique_ids(observer.snapshot(), wanted))
            daemon.start()
            deadline = time.monotonic() + 20
            while len(unique_ids(observer.snapshot(), wanted)) < before + 500:
                assert time.monotonic() < deadline, daemon.log_tail()
                time.sleep(0.005)
            daemon.kill()
            got = len(unique_ids(observer.snapshot(), wanted))
            assert got < BACKLOG, f"crash {crash} came too late to be mid-drain"
        daemon.start()
        observer.wait_for(lambda seen: unique_ids(seen, wanted) == wanted, within_s=60)
        status = daemon.control("status")
        assert status["link"]["connected"] is True
        code, _ = daemon.terminate()
        assert code == 0
    finally:
        daemon.kill()
        observer.stop()

    ours = [m for m in observer.snapshot() if m.json()["id"] in wanted]
    first: dict[str, bytes] = {}
    for message in ours:
        # A duplicate is the very same envelope: same id, same bytes, so the cloud drops it.
        assert first.setdefault(message.json()["id"], message.payload) == message.payload
    duplicates = len(ours) - len(first)
    print(f"{duplicates} duplicates after {CRASHES} SIGKILLs (window {WINDOW})")
    assert duplicates <= CRASHES * WINDOW, f"{duplicates} duplicates for {CRASHES} crashes"
    order = {msg_id: n for n, msg_id in enumerate(ids)}
    per_topic: dict[str, list[int]] = {}
    seen_ids: set[str] = set()
    for message in ours:
        msg_id = message.json()["id"]
        if msg_id not in seen_ids:
            seen_ids.add(msg_id)
            per_topic.setdefault(message.topic, []).append(order[msg_id])
    for topic, positions in per_topic.items():
        assert positions == sorted(positions), f"{topic} out of order"


def _states(seen: list[Seen]) -> list[dict[str, object]]:
    return [json.loads(m.payload) for m in seen if m.topic == f"{ROOT}/state"]


def test_birth_is_retained_while_connected_and_sigkill_publishes_the_will(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    config = write_config(tmp_path, mosquitto.port)
    observer = Observer(mosquitto.host, mosquitto.port, [f"{ROOT}/state"]).start()
    daemon = DaemonProcess(config, tmp_path / "run")
    try:
        daemon.start()
        boot_id = daemon.control("status")["boot_id"]
        observer.wait_for(lambda seen: any(s["body"]["online"] for s in _states(seen)))
        birth = _states(observer.snapshot())[-1]
        assert birth["type"] == "state.online"
        body = birth["body"]
        assert isinstance(body, dict)
        assert body["boot_id"] == boot_id and body["version"] and "config_version" in body
        assert "printer" in body["capabilities"]

        late = Observer(mosquitto.host, mosquitto.port, [f"{ROOT}/state"]).start()
        late.wait_for(lambda seen: bool(seen))
        retained = late.snapshot()[0]
        late.stop()
        assert retained.retain and retained.json()["body"]["online"] is True

        daemon.kill()
        observer.wait_for(lambda seen: not _states(seen)[-1]["body"]["online"])  # type: ignore[index]
        will = _states(observer.snapshot())[-1]
        assert will["type"] == "state.offline"
        assert will["body"]["boot_id"] == boot_id  # type: ignore[index]
        assert will["seq"] > birth["seq"]  # type: ignore[operator]

        after = Observer(mosquitto.host, mosquitto.port, [f"{ROOT}/state"]).start()
        after.wait_for(lambda seen: bool(seen))
        assert after.snapshot()[0].json()["body"]["online"] is False
        after.stop()

        # A clean stop says offline itself (the broker sends no will after DISCONNECT).
        daemon.start()
        observer.wait_for(lambda seen: _states(seen)[-1]["body"]["online"] is True)  # type: ignore[index]
        code, _ = daemon.terminate()
        assert code == 0
        observer.wait_for(lambda seen: _states(seen)[-1]["body"]["online"] is False)  # type: ignore[index]
    finally:
        daemon.kill()
        observer.stop()
