"""The local control socket: how `edged status` and `edged sim ...` talk to a running daemon."""
