"""The daemon as a real process, with READY read from a real $NOTIFY_SOCKET datagram socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edged.config import load_config
from edged.control.client import call


@dataclass
class DaemonProcess:
    config_file: Path | None
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    notifications: list[str] = field(default_factory=list)
    _notify: socket.socket | None = None

    @property
    def log_file(self) -> Path:
        return self.workdir / "daemon.log"

    def start(self, ready_timeout: float = 10.0, extra_args: tuple[str, ...] = ()) -> float:
        """Start and wait for READY=1; returns seconds from spawn to READY."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        notify_path = self.workdir / "notify.sock"
        notify_path.unlink(missing_ok=True)
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(notify_path))
        self.notifications = []
        env = {**os.environ, "NOTIFY_SOCKET": str(notify_path), **self.env}
        log = self.log_file.open("ab")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edged", "run", *self._config_args(), *extra_args],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=log,
        )
        self.wait_for_notification("READY=1", ready_timeout)
        return time.monotonic() - started

    def wait_for_notification(self, state: str, timeout: float) -> None:
        assert self._notify is not None
        deadline = time.monotonic() + timeout
        while state not in self.notifications:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {state} in {timeout} s; log:\n{self.log_tail()}")
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"daemon exited with {self.process.returncode}; log:\n{self.log_tail()}"
                )
            self._notify.settimeout(min(remaining, 0.2))
            try:
                data = self._notify.recv(4096)
            except TimeoutError:
                continue
            self.notifications.extend(data.decode().split("\n"))

    def _config_args(self) -> list[str]:
        return [] if self.config_file is None else ["--config", str(self.config_file)]

    def control(self, command: str, args: dict[str, Any] | None = None) -> Any:
        socket_path = load_config(self.config_file).paths.socket_path()
        if not socket_path.is_absolute():
            socket_path = self.workdir / socket_path
        return call(socket_path, command, args)

    def terminate(self, timeout: float = 5.0) -> tuple[int, float]:
        """SIGTERM; returns the exit code and how long the stop took."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        elapsed = time.monotonic() - started
        self._drain_notify()
        self._close_notify()
        return code, elapsed

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._close_notify()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def _drain_notify(self) -> None:
        if self._notify is None:
            return
        self._notify.setblocking(False)
        while True:
            try:
                self.notifications.extend(self._notify.recv(4096).decode().split("\n"))
            except BlockingIOError:
                return

    def _close_notify(self) -> None:
        if self._notify is not None:
            self._notify.close()
            self._notify = None
