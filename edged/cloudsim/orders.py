"""The simulated backend's order desk: it places mini-program orders at a device (a signed
`cmd/order`), issues their pickup QR (a signed `order.pickup` envelope), and keeps what the
device reported on `evt/order`. Pure: the server publishes what it returns."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edged.cloudsim.downlink import DownlinkSigner
from edged.contract.bodies import (
    OrderCollect,
    OrderLine,
    OrderPlaced,
    PickupCredential,
    PickupToken,
    dump_body,
)
from edged.contract.envelope import Envelope, rfc3339
from edged.contract.ids import new_id
from edged.contract.pickup import PICKUP_TYPE, encode_pickup_token
from edged.contract.topics import DeviceTopics, Downlink

SAMPLE_LINES = (
    OrderLine(
        barcode="6901028075831", name="农夫山泉 饮用天然水 550ml", quantity=2, unit_price_fen=200
    ),
    OrderLine(barcode="6934567890122", name="可口可乐 330ml", quantity=1, unit_price_fen=350),
)


def pickup_code_hash(order_id: str, code: str) -> str:
    import hashlib

    return hashlib.sha256(f"{order_id}:{code}".encode()).hexdigest()


@dataclass
class PlacedOrder:
    device: DeviceTopics
    order_id: str
    code: str
    """The 6-digit pickup code the shopper sees in the mini-program (the device gets its hash)."""
    expires_at: datetime
    statuses: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Signed:
    topic: str
    payload: bytes


class OrderDesk:
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._signer = DownlinkSigner(key)
        self.orders: dict[str, PlacedOrder] = {}

    def _sign(
        self, device: DeviceTopics, type_: str, body: dict[str, Any], ttl_s: float
    ) -> Envelope:
        return self._signer.sign(device, type_, body, ttl_s)

    def place(
        self,
        device: DeviceTopics,
        *,
        order_id: str | None = None,
        lines: tuple[OrderLine, ...] = SAMPLE_LINES,
        collect: OrderCollect | None = None,
        valid_s: float = 3600,
        code: str | None = None,
    ) -> tuple[PlacedOrder, Signed]:
        order_id = order_id or "MP" + new_id().replace("-", "")[:20]
        code = code or f"{secrets.randbelow(1_000_000):06d}"
        expires = datetime.now(UTC) + timedelta(seconds=valid_s)
        placed = OrderPlaced(
            order_id=order_id,
            lines=list(lines),
            paid_fen=sum(line.quantity * line.unit_price_fen for line in lines),
            collect=collect or OrderCollect(mode="counter"),
            pickup=PickupCredential(
                code_hash=pickup_code_hash(order_id, code), expires_at=rfc3339(expires)
            ),
        )
        order = PlacedOrder(device, order_id, code, expires)
        self.orders[order_id] = order
        envelope = self._sign(device, "order.created", dump_body(placed), 300)
        return order, Signed(device.downlink(Downlink.ORDER), envelope.to_bytes())

    def cancel(self, order_id: str, reason: str = "shopper cancelled") -> Signed:
        order = self.orders[order_id]
        body = {"order_id": order_id, "reason": reason}
        envelope = self._sign(order.device, "order.cancelled", body, 300)
        return Signed(order.device.downlink(Downlink.ORDER), envelope.to_bytes())

    def pickup_token(
        self, order_id: str, *, ttl_s: float = 600, device: DeviceTopics | None = None
    ) -> str:
        """The pickup QR's text for the order (for another device, when `device` says so)."""
        order = self.orders[order_id]
        where = device or order.device
        body = PickupToken(order_id=order_id, site=where.site, device=where.device)
        envelope = self._sign(where, PICKUP_TYPE, dump_body(body), ttl_s)
        return encode_pickup_token(envelope)

    def record_status(self, order_id: str, status: str) -> None:
        order = self.orders.get(order_id)
        if order is not None:
            order.statuses.append(status)
