"""A price change the backend signs and publishes on `cmd/stock` is what the next shopper pays;
an unsigned or forged one changes nothing. Real Mosquitto, the daemon as a process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edged.cloudsim.keys import ensure_keys
from edged.contract.envelope import make_envelope
from edged.contract.signing import sign_envelope
from edged.contract.topics import DeviceTopics, Downlink
from tests.e2e.kiosk import ITEMS, Kiosk

TOPICS = DeviceTopics("e2e", "kiosk-1")
WATER = ITEMS[0]  # 200 fen in the bundled catalog


def price_change(version: int, price_fen: int, key: Ed25519PrivateKey | None) -> bytes:
    envelope = make_envelope(
        type="stock.update",
        device=TOPICS.device,
        seq=version,
        body={"version": version, "items": [{"barcode": WATER, "price_fen": price_fen}]},
        now=datetime.now(UTC),
        clock_synced=True,
        ttl=timedelta(seconds=60),
    )
    return (sign_envelope(envelope, key) if key else envelope).to_bytes()


def water_line(status: dict[str, Any]) -> tuple[int, int]:
    sale = status["checkout"]["sale"]
    [line] = [line for line in sale["lines"] if line["barcode"] == WATER]
    return line["unit_price_fen"], line["quantity"]


def test_a_signed_price_change_is_what_the_next_shopper_pays(kiosk: Kiosk) -> None:
    backend = ensure_keys(kiosk.data / "cloudsim").signing
    kiosk.sim.publish(TOPICS.downlink(Downlink.STOCK), price_change(1, 1, None))
    kiosk.sim.publish(
        TOPICS.downlink(Downlink.STOCK), price_change(1, 1, Ed25519PrivateKey.generate())
    )
    kiosk.sim.publish(TOPICS.downlink(Downlink.STOCK), price_change(2, 250, backend))

    status = kiosk.wait(
        "the signed update applied and the forgeries rejected",
        lambda s: (
            s["stock_updates"].get("updates") == 1
            and s["link"]["downlink"]["rejected"].get("unsigned") == 1
            and s["link"]["downlink"]["rejected"].get("forged") == 1
        ),
    )
    assert status["stock_updates"]["latest_version"] == 2

    kiosk.scan(WATER)
    assert water_line(kiosk.status()) == (250, 1)
    assert kiosk.rows(
        f"SELECT price_fen, price_version FROM products WHERE barcode = '{WATER}'"
    ) == [{"price_fen": 250, "price_version": 2}]
    kiosk.wait(
        "the cloud told what applied",
        lambda s: kiosk.cloud()["received"].get("stock.applied") == 1,
    )
