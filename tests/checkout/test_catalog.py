"""The catalog seed: valid codes only, loaded once into an empty catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from edged.runtime.clock import SystemClock
from edged.services.stock.catalog import Catalog, CatalogError, bundled_seed, parse_seed
from edged.store import Store


def test_bundled_seed_has_real_products_with_valid_codes() -> None:
    rows = parse_seed(bundled_seed(), "catalog.csv")  # parse_seed verifies every check digit
    assert len(rows) >= 10
    assert any(row.product.name.startswith("农夫山泉") for row in rows)
    assert all(isinstance(row.product.price_fen, int) for row in rows)


@pytest.mark.parametrize(
    ("csv", "problem"),
    [
        ("barcode,name,price\n", "header must be barcode,name,price_fen,stock"),
        ("barcode,name,price_fen,stock\n6901028075832,水,200,1\n", "not a valid product code"),
        ("barcode,name,price_fen,stock\n6901028075831,水,2.00,1\n", "price_fen must be a whole"),
        ("barcode,name,price_fen,stock\n6901028075831,水,-1,1\n", "must not be negative"),
        ("barcode,name,price_fen,stock\n6901028075831,,200,1\n", "name must be"),
        (
            "barcode,name,price_fen,stock\n6901028075831,水,200,1\n6901028075831,水,200,1\n",
            "appears twice",
        ),
        ("barcode,name,price_fen,stock\n", "no products"),
    ],
)
def test_bad_seed_is_refused_with_file_and_line(csv: str, problem: str) -> None:
    with pytest.raises(CatalogError, match=problem) as caught:
        parse_seed(csv, "shop.csv")
    assert str(caught.value).startswith("shop.csv")


async def test_seed_loads_only_into_an_empty_catalog(tmp_path: Path) -> None:
    seed = tmp_path / "shop.csv"
    seed.write_text("barcode,name,price_fen,stock\n69012341,绿箭,250,5\n", encoding="utf-8")
    store = await Store.open(tmp_path / "edged.db", SystemClock())
    try:
        catalog = Catalog(store)
        assert await catalog.seed_if_empty(seed) == 1
        assert await catalog.seed_if_empty(None) == 0  # never over an existing catalog
        rows = await store.fetchall(
            "SELECT p.barcode, price_fen, quantity FROM products p "
            "JOIN stock s ON s.barcode = p.barcode"
        )
        assert [tuple(r) for r in rows] == [("69012341", 250, 5)]
        with pytest.raises(CatalogError, match="cannot read"):
            await catalog.seed_if_empty(tmp_path / "missing.csv")
    finally:
        await store.close()
