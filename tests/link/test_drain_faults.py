"""Faults during a drain: the broker stopped and restarted; nothing lost, order per topic."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edged.contract.topics import Uplink
from tests.link.helpers import Observer, first_seen_in_order, link_parts, plain_settings
from tests.support.mosquitto import Mosquitto
from tests.support.ports import free_port

MONEY_AND_CONTROL = [Uplink.TXN, Uplink.PAY, Uplink.ORDER, Uplink.STOCK]
BACKLOG = 3000


def persistent_broker(tmp_path: Path) -> Mosquitto:
    """Mosquitto that keeps sessions across its restart, like a production broker does,
    so the independent observer's queue survives; the device's must not depend on it."""
    store = tmp_path / "mosquitto-db"
    store.mkdir()
    port = free_port()
    return Mosquitto(
        tmp_path / "mosquitto",
        port=port,
        extra_config=(
            # `user root`: when the tests run as root, mosquitto would otherwise drop to its
            # own user, which cannot write into the test's private temporary directory.
            f"user root\npersistence true\npersistence_location {store}/\n"
            f"listener {port} 127.0.0.1\nallow_anonymous true\n"
        ),
    )


async def test_broker_stopped_mid_drain_loses_nothing_and_keeps_order(tmp_path: Path) -> None:
    broker = persistent_broker(tmp_path)
    broker.start()
    observer = Observer(
        broker.host, broker.port, ["edge/v1/s1/k1/evt/#"], client_id="backend", persistent=True
    ).start()
    try:
        async with link_parts(tmp_path, plain_settings(broker.port)) as parts:
            ids = await parts.add(BACKLOG, MONEY_AND_CONTROL)
            order = {msg_id: n for n, msg_id in enumerate(ids)}
            parts.start()
            await observer.await_for(lambda seen: len(seen) >= 300)
            broker.stop()
            depth_while_down = (await parts.outbox.stats()).depth
            assert depth_while_down > 0, "the broker must go down in the middle of the drain"
            broker.start()

            await observer.await_for(
                lambda seen: {m.json()["id"] for m in seen} >= set(ids), within_s=30
            )
            await parts.connected()
            assert parts.link.connects >= 2, "the link must have reconnected"
            # Delivered marks follow PUBACKs: wait for the last batch to commit.
            for _ in range(100):
                if (await parts.outbox.stats()).depth == 0:
                    break
                await asyncio.sleep(0.05)
            assert (await parts.outbox.stats()).depth == 0
    finally:
        observer.stop()
        broker.stop()

    seen = observer.snapshot()
    received = [m.json()["id"] for m in seen]
    assert set(received) >= set(ids), "every outbox message arrived"
    for topic, positions in first_seen_in_order(seen, order).items():
        assert positions == sorted(positions), f"{topic} arrived out of order"
    # Re-sends after the reconnect are the same bytes under the same id.
    by_id: dict[str, bytes] = {}
    for message in seen:
        msg_id = message.json()["id"]
        assert by_id.setdefault(msg_id, message.payload) == message.payload
