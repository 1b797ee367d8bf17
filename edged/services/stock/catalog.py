"""The catalog: products and prices live in the store; a CSV seeds an empty catalog.

The seed is only for a kiosk with no catalog yet (the development default, a first boot);
once products exist, prices and stock change through signed `cmd/stock` updates
(updates.py), never by re-reading a file that may be stale.
"""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from edged.services.checkout.codes import ProductCode, classify
from edged.store import Store, StoreError, Transaction

SEED_COLUMNS = ("barcode", "name", "price_fen", "stock")
MAX_NAME_CHARS = 64


class CatalogError(StoreError):
    """A seed file that cannot be used; the message names the file and line.

    A StoreError, so the daemon refuses to start with this message instead of a traceback.
    """


@dataclass(frozen=True)
class Product:
    barcode: str
    name: str
    price_fen: int


@dataclass(frozen=True)
class SeedRow:
    product: Product
    stock: int


def bundled_seed() -> str:
    return (resources.files("edged") / "defaults" / "catalog.csv").read_text("utf-8")


def parse_seed(text: str, source: str) -> list[SeedRow]:
    """Validate every row before any is used: a half-loaded catalog is worse than none."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != SEED_COLUMNS:
        raise CatalogError(f"{source}: header must be {','.join(SEED_COLUMNS)}")
    rows: list[SeedRow] = []
    seen: set[str] = set()
    for row in reader:
        where = f"{source}:{reader.line_num}"
        code = classify(row["barcode"] or "")
        if not isinstance(code, ProductCode):
            raise CatalogError(f"{where}: {row['barcode']!r} is not a valid product code")
        if code.key in seen:
            raise CatalogError(f"{where}: barcode {code.key} appears twice")
        name = (row["name"] or "").strip()
        if not name or len(name) > MAX_NAME_CHARS:
            raise CatalogError(f"{where}: name must be 1-{MAX_NAME_CHARS} characters")
        price, stock = (
            _integer(row["price_fen"], where, "price_fen"),
            _integer(row["stock"], where, "stock"),
        )
        if price < 0:
            raise CatalogError(f"{where}: price_fen must not be negative")
        seen.add(code.key)
        rows.append(SeedRow(Product(code.key, name, price), stock))
    if not rows:
        raise CatalogError(f"{source}: no products")
    return rows


def _integer(value: str | None, where: str, column: str) -> int:
    text = (value or "").strip()
    if not (text.lstrip("-").isdigit() and text.isascii()):
        raise CatalogError(f"{where}: {column} must be a whole number (fen), got {text!r}")
    return int(text)


class Catalog:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def seed_if_empty(self, path: Path | None) -> int:
        """Load the seed (the config's file, else the bundled one) into an empty catalog."""
        if path is not None:
            try:
                text = await asyncio.to_thread(path.read_text, encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CatalogError(f"{path}: cannot read the catalog seed: {exc}") from None
            rows = parse_seed(text, str(path))
        else:
            rows = parse_seed(bundled_seed(), "edged/defaults/catalog.csv")
        async with self._store.transaction() as tx:
            row = await tx.fetchone("SELECT COUNT(*) FROM products")
            if row is not None and row[0] > 0:
                return 0
            await tx.executemany(
                "INSERT INTO products (barcode, name, price_fen, updated_at) VALUES (?, ?, ?, ?)",
                [(r.product.barcode, r.product.name, r.product.price_fen, tx.now) for r in rows],
            )
            await tx.executemany(
                "INSERT INTO stock (barcode, quantity) VALUES (?, ?)",
                [(r.product.barcode, r.stock) for r in rows],
            )
        return len(rows)

    async def lookup(self, tx: Transaction, key: str) -> Product | None:
        """Inside the transaction that adds the line, so the price is the one committed."""
        row = await tx.fetchone(
            "SELECT barcode, name, price_fen FROM products WHERE barcode = ? AND active = 1",
            (key,),
        )
        if row is None:
            return None
        return Product(row["barcode"], row["name"], int(row["price_fen"]))

    async def count(self) -> int:
        row = await self._store.fetchone("SELECT COUNT(*) FROM products WHERE active = 1")
        return int(row[0]) if row else 0
