"""Checkout: the sale session (scans in, committed basket changes and views out), receipts."""

from edged.services.checkout.assembly import setup

__all__ = ["setup"]
