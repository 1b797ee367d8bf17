"""The durable local store: every fact is committed here before anyone outside sees it."""

from edged.store.database import Store, StoreError, Transaction

__all__ = ["Store", "StoreError", "Transaction"]
