"""sd_notify over a real unix datagram socket, as systemd listens for it."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

from edged.runtime.systemd import SystemdNotifier


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


async def test_watchdog_pings_only_while_healthy(tmp_path: Path) -> None:
    sock = listener(tmp_path / "notify")
    sock.setblocking(False)
    notifier = SystemdNotifier(
        {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "100000"}
    )
    assert notifier.watchdog_interval_s == 0.05
    healthy = True
    task = asyncio.create_task(notifier.watchdog(lambda: healthy))
    await asyncio.sleep(0.22)
    pings_while_healthy = _drain(sock)
    healthy = False
    await asyncio.sleep(0.2)
    pings_while_sick = _drain(sock)
    task.cancel()

    assert pings_while_healthy >= 3
    assert pings_while_sick == 0
    sock.close()


def test_without_systemd_nothing_is_sent_and_nothing_fails() -> None:
    notifier = SystemdNotifier({})
    notifier.ready()
    assert notifier.watchdog_interval_s is None


def test_a_watchdog_meant_for_another_pid_is_ignored() -> None:
    env = {"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    assert SystemdNotifier(env).watchdog_interval_s is None


def _drain(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            count += sock.recv(4096).count(b"WATCHDOG=1")
        except BlockingIOError:
            return count
