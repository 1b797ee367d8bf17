"""The kiosk's touch screen and the technician page, served by the daemon on loopback."""

from edged.services.kiosk_screen.part import setup

__all__ = ["setup"]
