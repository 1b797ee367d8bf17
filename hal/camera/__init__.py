"""Cameras that read QR and payment codes: picamera2, V4L2, and simulated."""
