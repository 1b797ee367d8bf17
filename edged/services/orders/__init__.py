"""Mini-program orders: stored from signed cmd/order, collected once by QR or code."""

from edged.services.orders.assembly import setup

__all__ = ["setup"]
