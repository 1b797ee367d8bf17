"""Poison messages through a real Mosquitto to the daemon as a process: every shape to every
device topic, and retained to the fleet and site config, is rejected with its reason and
counted; the same daemon process then sells, and a restart with the poison still retained
comes up and sells again."""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edged.contract.topics import PREFIX, DeviceTopics, Downlink
from tests.e2e.kiosk import Kiosk, code
from tests.link.helpers import Observer
from tests.support.poison import POISON_DETAILS, poison_payloads

TOPICS = DeviceTopics("e2e", "kiosk-1")
FLEET_CFG = f"{PREFIX}/_fleet/cfg"
SITE_CFG = f"{PREFIX}/e2e/_site/cfg"
AUDIENCE = {FLEET_CFG: "_fleet", SITE_CFG: "e2e/_site"}


def rejected(status: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = status["link"]["downlink"]["rejected"]
    return counts


def sell_one(kiosk: Kiosk) -> dict[str, Any]:
    kiosk.fill_basket()
    kiosk.scan(code("89"))
    return kiosk.wait(
        "paid",
        lambda s: (
            s["checkout"]["state"] == "idle"
            and s["payments"]["last"] is not None
            and s["payments"]["last"]["state"] == "paid"
            and s["payments"]["last"]["trade_no"] not in sold
        ),
        timeout=30,
    )


sold: set[str] = set()


def test_poison_on_every_downlink_topic_is_rejected_and_the_daemon_keeps_selling(
    kiosk: Kiosk,
) -> None:
    key = Ed25519PrivateKey.generate()  # signed-looking, by no trusted key
    attacker = Observer(kiosk.broker.host, kiosk.broker.port, ["edge/v1/e2e/kiosk-1/state"])
    attacker.start()
    try:
        topics = [TOPICS.downlink(kind) for kind in Downlink] + [SITE_CFG, FLEET_CFG]
        for topic in topics:
            for payload in poison_payloads(key, AUDIENCE.get(topic, TOPICS.device)).values():
                attacker.publish(topic, payload)
        # The two shapes, retained for every kiosk of the fleet and of the site.
        attacker.publish(
            FLEET_CFG, poison_payloads(key, "_fleet")["huge_int_unsigned"], retain=True
        )
        attacker.publish(
            SITE_CFG, poison_payloads(key, "e2e/_site")["lone_surrogate_signed"], retain=True
        )
        expected = len(topics) * len(POISON_DETAILS) + 2
        status = kiosk.wait(
            "every poison rejected",
            lambda s: rejected(s).get("malformed", 0) >= expected,
            timeout=30,
        )
        assert rejected(status) == {"malformed": expected}
        assert kiosk.daemon.process is not None and kiosk.daemon.process.poll() is None

        # each rejection logged with its exact reason
        lines = kiosk.daemon.log_file.read_text().splitlines()
        details = [
            event["detail"]
            for event in (json.loads(line) for line in lines if line.startswith("{"))
            if event.get("event") == "downlink rejected"
        ]
        for shape, detail in POISON_DETAILS.items():
            assert details.count(detail) >= len(topics), shape

        # the same process sells
        paid = sell_one(kiosk)
        sold.add(paid["payments"]["last"]["trade_no"])
        assert paid["link"]["connected"] and len(kiosk.receipts()) == 1

        # a restart meets the retained poison again, rejects it, and sells again
        kiosk.restart()
        status = kiosk.wait(
            "retained poison rejected after restart",
            lambda s: rejected(s).get("malformed", 0) >= 2,
            timeout=20,
        )
        assert rejected(status) == {"malformed": 2}
        sell_one(kiosk)
        assert len(kiosk.receipts()) == 2
    finally:
        attacker.stop()
