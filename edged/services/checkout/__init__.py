"""Checkout: catalog, the sale session, completion and receipts."""
