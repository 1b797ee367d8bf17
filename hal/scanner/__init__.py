"""Barcode scanners: keyboard-wedge (evdev), serial, and simulated."""
