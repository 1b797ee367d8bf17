"""A vending counter for end-to-end tests: the daemon as a process with its door lock on a USB
relay board that is a real pseudo-terminal, and its door switch simulated (`sim.door`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edged.cloudsim.scenarios import Settings
from tests.e2e.kiosk import Kiosk, kiosk_toml
from tests.support.kiosk_fixture import running_kiosk
from tests.support.mosquitto import Mosquitto
from tests.support.pty import Pty

ON = bytes.fromhex("A00101A2")
OFF = bytes.fromhex("A00100A1")


def write_vending_config(path: Path, data: Path, port: int, relay: Path, **vending: Any) -> None:
    settings = {"open_within_s": 5, "left_open_s": 30, "restart_window_s": 60, **vending}
    lines = "\n".join(f"{k} = {v}" for k, v in settings.items())
    payments = {"deadline_s": 5, "query_interval_s": 0.5}
    path.write_text(
        kiosk_toml(data, port, payments, device='kind = "vending"\n')
        + f"""
[release]
driver = "serial"
port = "{relay}"
channels = [1]

[release.sensor]
driver = "sim"
shopper = "manual"

[vending]
{lines}
""",
        encoding="utf-8",
    )


class Vending(Kiosk):
    relay: Pty

    def door(self, state: str) -> None:
        self.daemon.control("sim.door", {"slot": 1, "state": state})

    def release_states(self) -> list[str]:
        return [r["state"] for r in self.rows("SELECT state FROM releases ORDER BY id")]

    def wait_release(self, state: str, timeout: float = 15) -> dict[str, Any]:
        """Until the newest release is in `state`; returns the status that says so (so what a
        test reads from it is from the same moment)."""

        def reached(status: dict[str, Any]) -> bool:
            last = (status.get("release") or {}).get("last") or {}
            return bool(last.get("state") == state)

        return self.wait(f"release {state}", reached, timeout)

    def refund_marks(self) -> list[str]:
        return [r["sale_id"] for r in self.rows("SELECT sale_id FROM refund_marks")]

    def paid_sales(self) -> list[str]:
        return [r["id"] for r in self.rows("SELECT id FROM sales WHERE state = 'paid'")]


@contextmanager
def vending_counter(
    mosquitto: Mosquitto, tmp_path: Path, *, plugged: bool = True, **vending: Any
) -> Iterator[Vending]:
    relay = Pty(tmp_path / "edged-relay")
    if not plugged:
        relay.unplug()

    def write(config: Path, data: Path, port: int) -> None:
        write_vending_config(config, data, port, relay.link, **vending)

    try:
        settings = Settings(user_paying_s=1.5)
        with running_kiosk(mosquitto, tmp_path, write=write, settings=settings) as kiosk:
            counter = Vending(kiosk.broker, kiosk.daemon, kiosk.sim, kiosk.data)
            counter.relay = relay
            yield counter
    finally:
        relay.close()
