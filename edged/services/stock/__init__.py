"""Stock: the catalog of products, prices and stock, and the signed updates that change it."""

from edged.services.stock.assembly import setup

__all__ = ["setup"]
