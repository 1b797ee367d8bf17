"""The simulated mini-program backend: speaks only the MQTT contract, as the real one would.

Used by `edged demo`, the end-to-end tests and the development default; it answers payment
requests by scenario, signs its results, opens sealed codes and records transactions.
"""
