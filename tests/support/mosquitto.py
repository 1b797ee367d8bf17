"""A real Mosquitto broker on a free loopback port, stoppable and restartable mid-test."""

from __future__ import annotations

import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port, wait_for_port


class MosquittoMissing(RuntimeError):
    pass


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise MosquittoMissing(
        "mosquitto is not installed: run the README's test command, which installs it"
    )


@dataclass
class Mosquitto:
    workdir: Path
    port: int = field(default_factory=free_port)
    extra_config: str = ""
    """Listener and ACL lines for TLS tests; replaces the default plain listener when set."""
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        listener = self.extra_config or (f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        conf.write_text(
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\n"
            "max_inflight_messages 0\n"
            "max_queued_messages 0\n"
            f"{listener}",
            encoding="utf-8",
        )
        log = (self.workdir / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(conf)], stdout=log, stderr=log
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
