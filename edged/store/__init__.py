"""The durable local store: every fact is committed here before anyone outside sees it."""

from edged.store.database import Statements, Store, StoreError, StoreUnwritable, Transaction

__all__ = ["Statements", "Store", "StoreError", "StoreUnwritable", "Transaction"]
