"""Payments: micropay (payment code) and native QR, as persisted state machines."""
