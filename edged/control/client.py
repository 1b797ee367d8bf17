"""The CLI side of the control socket."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any


class ControlUnavailable(Exception):
    """No daemon answers on the socket."""


def call(path: Path, command: str, args: dict[str, Any] | None = None, timeout: float = 10) -> Any:
    """Send one command; return its result or raise RuntimeError with the daemon's error."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ControlUnavailable(f"no edged daemon is listening on {path} ({exc})") from None
        sock.sendall(json.dumps({"cmd": command, "args": args or {}}).encode() + b"\n")
        with sock.makefile("rb") as stream:
            line = stream.readline()
    if not line:
        raise ControlUnavailable(f"the daemon on {path} closed the connection")
    reply = json.loads(line)
    if not reply.get("ok"):
        raise RuntimeError(reply.get("error", "command failed"))
    return reply.get("result")
