"""The operator's side of fleet operations: sign config layers and commands, push them, watch.

It speaks only the MQTT contract (the same envelope codec, signing helper, topics and body
models the daemon uses) and imports nothing of the daemon's store, link or services, so it
runs on an operator's laptop or a backend job as well as beside a daemon.
"""
