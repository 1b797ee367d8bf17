"""sd_notify over a real unix datagram socket, as systemd listens for it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import statistics
import struct
from pathlib import Path

import pytest

from edged.runtime.systemd import SystemdNotifier

SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)
"""Linux's value (asm-generic and x86); the socket module does not export it."""
TIMEVAL = struct.Struct("@ll")
"""struct timeval as the kernel hands it over with SO_TIMESTAMP."""


def listener(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    return sock


def test_ready_and_stopping_reach_the_notify_socket(tmp_path: Path) -> None:
    sock = listener(tmp_path / "notify")
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "notify")})

    notifier.ready()
    ready = sock.recv(4096).decode().split("\n")
    notifier.stopping()
    stopping = sock.recv(4096).decode().split("\n")

    assert "READY=1" in ready and f"MAINPID={os.getpid()}" in ready
    assert "STOPPING=1" in stopping
    notifier.close()
    sock.close()


def test_abstract_namespace_sockets_work(tmp_path: Path) -> None:
    name = f"edged-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).ready()
    assert b"READY=1" in sock.recv(4096)
    sock.close()


async def test_watchdog_pings_at_half_the_systemd_timeout_and_only_while_healthy(
    tmp_path: Path,
) -> None:
    """systemd kills a service that misses WATCHDOG_USEC: pings come every half of it."""
    sock = listener(tmp_path / "notify")
    # The kernel stamps each datagram when it is sent (a unix socket queues it at once), so
    # the gaps are the notifier's cadence, not this test's scheduling.
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
    notifier = SystemdNotifier(
        {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "200000"}
    )
    assert notifier.watchdog_interval_s == 0.1

    def receive(within_s: float) -> float:
        sock.settimeout(within_s)
        datagram, ancillary, _flags, _addr = sock.recvmsg(4096, socket.CMSG_SPACE(TIMEVAL.size))
        assert datagram == b"WATCHDOG=1"
        [(level, kind, stamp)] = ancillary
        assert (level, kind) == (socket.SOL_SOCKET, SO_TIMESTAMP)
        seconds, micros = TIMEVAL.unpack(stamp)
        return seconds + micros / 1e6

    async def next_ping(within_s: float) -> float:
        return await asyncio.to_thread(receive, within_s)

    healthy = True
    task = asyncio.create_task(notifier.watchdog(lambda: healthy))
    try:
        pings = [await next_ping(2.0) for _ in range(6)]
        gaps = [later - earlier for earlier, later in itertools.pairwise(pings)]
        # Never faster than the interval; slower only by the loop's scheduling delay on a busy
        # machine, and on the median inside systemd's 0.2 s.
        assert min(gaps) >= 0.09, gaps
        assert statistics.median(gaps) < 0.2, gaps

        healthy = False
        with contextlib.suppress(TimeoutError):
            await next_ping(0.15)  # at most the one already in flight
        with pytest.raises(TimeoutError):
            await next_ping(0.5)  # five intervals without a ping: systemd would restart us

        healthy = True
        await next_ping(0.5)  # the task lived on: pings resume when health returns
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        sock.close()


def test_without_systemd_nothing_is_sent_and_nothing_fails() -> None:
    notifier = SystemdNotifier({})
    notifier.ready()
    assert notifier.watchdog_interval_s is None


def test_a_watchdog_meant_for_another_pid_is_ignored() -> None:
    env = {"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    assert SystemdNotifier(env).watchdog_interval_s is None
