"""Sales: the persisted sale records and the ledger where payments settle them."""

from edged.services.sales.assembly import setup
from edged.services.sales.ledger import SalesLedger

__all__ = ["SalesLedger", "setup"]
