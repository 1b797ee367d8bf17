"""Handing goods over: a release (a paid sale's door, a redeemed order's slot) is a committed
fact before the relay is energised, and every change to it is reported through the outbox."""

from edged.services.release.assembly import setup

__all__ = ["setup"]
