"""Printing: the durable print queue between committed sales and the receipt printer."""

from edged.services.printing.assembly import setup

__all__ = ["setup"]
