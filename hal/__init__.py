"""Hardware abstraction: devices and nothing of shops.

Each device kind has a small typed interface (`protocol.py`), real drivers and a simulated
driver; `hal.factory` picks one from config so services run unchanged on either.
"""
