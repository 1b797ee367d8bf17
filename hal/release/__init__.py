"""Release devices: the lock of a vending door or the slots of a cabinet, with door sensors.

`protocol.py` is the seam; `door.py` turns a relay and a door sensor into the release device
(opened, closed, not opened in time, left open); the relay and sensor drivers are simulated,
a USB-serial relay board (pyserial) and GPIO lines (libgpiod v2, optional extra `gpio`).
"""
