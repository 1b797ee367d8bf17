"""A kiosk run by fleet operations: real Mosquitto, the daemon as a process, the operator's CLI.

The kiosk trusts the simulated cloud's key (payments) and the operator's key (config layers
and commands); the operator drives it only through `edged fleet`, as a person would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edged.contract.bodies import OpReply
from edged.contract.envelope import Envelope, decode_envelope
from edged.control.client import ControlUnavailable
from edged.fleetctl.keys import generate_key, load_key
from tests.e2e.kiosk import Kiosk, write_config
from tests.link.helpers import Observer, Seen
from tests.support.kiosk_fixture import running_kiosk
from tests.support.mosquitto import Mosquitto

SITE = "e2e"
DEVICE = "kiosk-1"
ROOT = f"edge/v1/{SITE}/{DEVICE}"


@dataclass
class Fleet:
    kiosk: Kiosk
    key_file: Path
    workdir: Path
    observer: Observer

    @property
    def broker(self) -> list[str]:
        return ["--host", "127.0.0.1", "--port", str(self.kiosk.broker.port)]

    def run(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "edged", "fleet", *args],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def op(
        self, command: str, *args: str, wait: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        extra = ["--wait", "--timeout", str(timeout)] if wait else []
        return self.run(
            "op",
            f"{SITE}/{DEVICE}",
            command,
            *args,
            "--key",
            str(self.key_file),
            *extra,
            *self.broker,
            timeout=timeout + 30,
        )

    def replies(self, result: subprocess.CompletedProcess[str]) -> list[OpReply]:
        return [OpReply.model_validate(json.loads(line)) for line in result.stdout.splitlines()]

    def seen(self, suffix: str) -> list[Seen]:
        return [m for m in self.observer.snapshot() if m.topic == f"{ROOT}/{suffix}"]

    def envelopes(self, suffix: str) -> list[Envelope]:
        return [decode_envelope(m.payload) for m in self.seen(suffix)]

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.05)
        raise AssertionError(f"not {what} within {timeout} s")

    def wait_serving(self, timeout: float = 30) -> dict[str, Any]:
        """Until the daemon answers and has recovered: a reload leaves no socket for a moment."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                status = self.kiosk.status()
                if status["checkout"]["recovered"]:
                    return status
            except (ControlUnavailable, ConnectionError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the daemon did not serve within {timeout} s")
            time.sleep(0.1)

    def operator_key(self) -> Any:
        return load_key(self.key_file)


def operator_config(path: Path, data: Path, port: int, public_key: str, **sections: str) -> None:
    """The e2e kiosk's config, trusting the operator's key too."""
    write_config(path, data, port)
    text = path.read_text(encoding="utf-8")
    text += (
        f'\n[security]\ntrusted_keys = ["{public_key}"]\ntechnician_token = "tech-secret-4711"\n'
    )
    for name, body in sections.items():
        text += f"\n[{name}]\n{body}\n"
    path.write_text(text, encoding="utf-8")


@contextmanager
def fleet_kiosk(mosquitto: Mosquitto, tmp_path: Path, **sections: str) -> Iterator[Fleet]:
    key_file = tmp_path / "operator" / "key.pem"
    public = generate_key(key_file)

    def write(path: Path, data: Path, port: int) -> None:
        operator_config(path, data, port, public, **sections)

    observer = Observer("127.0.0.1", mosquitto.port, [f"{ROOT}/#"]).start()
    try:
        with running_kiosk(mosquitto, tmp_path, write=write) as kiosk:
            yield Fleet(kiosk, key_file, tmp_path, observer)
    finally:
        observer.stop()
