"""edged: the edge gateway daemon of a self-checkout kiosk or an unattended vending counter."""

__version__ = "0.1.0"
