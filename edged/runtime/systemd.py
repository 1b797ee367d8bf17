"""The systemd notify protocol (sd_notify) spoken over $NOTIFY_SOCKET, no libsystemd needed."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger("edged.systemd")


class SystemdNotifier:
    """Silently does nothing when not started by systemd (no NOTIFY_SOCKET)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._watchdog_s = _watchdog_interval(env)
        self._sock: socket.socket | None = None
        if self._address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)

    @property
    def watchdog_interval_s(self) -> float | None:
        """Half of WATCHDOG_USEC, when systemd asked this process for watchdog pings."""
        return self._watchdog_s

    def notify(self, *states: str) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto("\n".join(states).encode(), self._address)
        except OSError as exc:
            log.warning("sd_notify failed", extra={"reason": str(exc)})

    def ready(self, status: str = "serving") -> None:
        self.notify("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def stopping(self) -> None:
        self.notify("STOPPING=1", "STATUS=stopping")

    def reloading(self, why: str) -> None:
        """The daemon restarts its parts (or re-executes itself) and says READY=1 again."""
        self.notify("RELOADING=1", f"STATUS={why}")

    async def watchdog(self, healthy: Callable[[], bool]) -> None:
        """Ping at half the watchdog interval while the loop runs and `healthy()` holds."""
        if self._watchdog_s is None:
            return
        while True:
            if healthy():
                self.notify("WATCHDOG=1")
            await asyncio.sleep(self._watchdog_s)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2_000_000
