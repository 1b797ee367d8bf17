"""Signed `cmd/stock` updates: the backend changes prices, names and stock of the catalog.

The link has verified signature, expiry, replay and addressing; this checks the content and
applies it in the inbox transaction, together with the `stock.applied` report on `evt/stock`.
Nothing of a message applies unless all of it is valid. A basket keeps the prices its lines
were scanned at: `add_product` copies the price when the shopper scans.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, NoReturn

from edged.contract.bodies import (
    BodyError,
    StockApplied,
    StockItem,
    StockLevel,
    StockUpdate,
    dump_body,
    envelope_body,
)
from edged.contract.envelope import Envelope
from edged.contract.topics import Uplink
from edged.link.downlink import HandlerRejected
from edged.services.checkout.codes import ProductCode, classify
from edged.store import Statements, Transaction
from edged.store.outbox import Outbox

log = logging.getLogger("edged.checkout.stock")

STOCK_UPDATE = "stock.update"
STOCK_APPLIED = "stock.applied"

ALL_LEVELS_SQL = (
    "SELECT p.barcode, p.name, p.price_fen, p.active, p.price_version, "
    "COALESCE(st.quantity, 0) AS quantity "
    "FROM products p LEFT JOIN stock st ON st.barcode = p.barcode"
)
LEVELS_SQL = ALL_LEVELS_SQL + " WHERE p.barcode IN ({})"


class StockUpdates:
    """The `cmd/stock` handler; `status()` says what it applied and refused."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self.latest_version = 0
        self.counts: Counter[str] = Counter()

    async def handle_downlink(self, envelope: Envelope, tx: Transaction, address: Any) -> None:
        try:
            update = envelope_body(envelope, STOCK_UPDATE, StockUpdate)
        except BodyError as exc:
            self._refuse(envelope, str(exc))
        keys: list[str] = []
        for item in update.items:
            code = classify(item.barcode)
            if not isinstance(code, ProductCode):
                self._refuse(envelope, f"{item.barcode!r} is not a valid product code")
            if code.key in keys:
                self._refuse(envelope, f"product {code.key} appears twice")
            keys.append(code.key)
        # Deferred: the changes and their report ride on the inbox transaction's COMMIT.
        tx.defer(lambda s: self._apply_now(s, envelope, update, keys))

    def _apply_now(
        self, s: Statements, envelope: Envelope, update: StockUpdate, keys: list[str]
    ) -> None:
        known = {row["barcode"]: row for row in _levels(s, keys)}
        changed: list[str] = []
        stale: list[str] = []
        for key, item in zip(keys, update.items, strict=True):
            row = known.get(key)
            if row is None:
                self._add_product(s, envelope, key, item, update.version)
            elif int(row["price_version"]) >= update.version:
                stale.append(key)
                continue
            else:
                _change_product(s, key, item, update.version)
            changed.append(key)
        applied = [_level(row) for row in _levels(s, changed)]
        report = StockApplied(
            update_id=envelope.id, version=update.version, applied=applied, stale=stale
        )
        self._outbox.write(s, Uplink.STOCK, STOCK_APPLIED, dump_body(report))
        s.after.append(lambda: self._applied(envelope, update.version, len(changed), len(stale)))

    def _add_product(
        self, s: Statements, envelope: Envelope, key: str, item: StockItem, version: int
    ) -> None:
        if item.name is None or item.price_fen is None:
            self._refuse(envelope, f"new product {key} needs a name and a price_fen")
        s.execute(
            "INSERT INTO products (barcode, name, price_fen, active, price_version, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (key, item.name, item.price_fen, int(item.active in (None, True)), version, s.now),
        )
        s.execute(
            "INSERT INTO stock (barcode, quantity) VALUES (?, ?)",
            (key, item.quantity if item.quantity is not None else item.delta or 0),
        )

    def _applied(self, envelope: Envelope, version: int, changed: int, stale: int) -> None:
        self.latest_version = max(self.latest_version, version)
        self.counts["updates"] += 1
        self.counts["products_changed"] += changed
        self.counts["products_stale"] += stale
        log.info(
            "stock update applied",
            extra={"msg_id": envelope.id, "version": version, "changed": changed, "stale": stale},
        )

    def _refuse(self, envelope: Envelope, reason: str) -> NoReturn:
        """Count and log, then make the link roll the inbox transaction back: no effect."""
        self.counts["refused"] += 1
        log.warning("stock update refused", extra={"msg_id": envelope.id, "reason": reason})
        raise HandlerRejected(reason)

    async def status(self) -> dict[str, Any]:
        return {"latest_version": self.latest_version, **self.counts}


def catalog_levels(s: Statements) -> list[StockLevel]:
    """Every product as it stands now, by barcode: the full snapshot `op.stock.resync` sends."""
    rows = s.fetchall(ALL_LEVELS_SQL + " ORDER BY p.barcode")
    return [_level(row) for row in rows]


def _level(row: Any) -> StockLevel:
    return StockLevel(
        barcode=row["barcode"],
        name=row["name"],
        price_fen=int(row["price_fen"]),
        active=bool(row["active"]),
        quantity=int(row["quantity"]),
        version=int(row["price_version"]),
    )


def _levels(s: Statements, keys: list[str]) -> list[Any]:
    if not keys:
        return []
    return s.fetchall(LEVELS_SQL.format(",".join("?" * len(keys))), keys)


def _change_product(s: Statements, key: str, item: StockItem, version: int) -> None:
    s.execute(
        "UPDATE products SET name = COALESCE(?, name), price_fen = COALESCE(?, price_fen), "
        "active = COALESCE(?, active), price_version = ?, updated_at = ? WHERE barcode = ?",
        (
            item.name,
            item.price_fen,
            None if item.active is None else int(item.active),
            version,
            s.now,
            key,
        ),
    )
    if item.quantity is not None or item.delta is not None:
        s.execute(
            "INSERT INTO stock (barcode, quantity) VALUES (?, ?) ON CONFLICT (barcode) DO UPDATE "
            "SET quantity = COALESCE(?, quantity + ?), version = version + 1",
            (
                key,
                item.quantity if item.quantity is not None else item.delta,
                item.quantity,
                item.delta,
            ),
        )
