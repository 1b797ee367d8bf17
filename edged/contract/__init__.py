"""The MQTT contract (v1): topics, the envelope codec, signing and message bodies.

Both the daemon and the simulated cloud speak only through this package, and the AsyncAPI
document is generated from it, so the contract lives in exactly one place.
"""
