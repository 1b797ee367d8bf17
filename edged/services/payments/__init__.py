"""Payments: micropay (payment code) and native QR, as persisted state machines."""

from edged.services.payments.assembly import setup

__all__ = ["setup"]
