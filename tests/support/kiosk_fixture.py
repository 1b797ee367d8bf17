"""One running e2e kiosk: its config written, the daemon as a process, the simulated cloud in
the test process, and the `Kiosk` waited ready. The kiosk fixtures of every e2e-style test
folder start their kiosk with it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edged.cloudsim.scenarios import Settings
from edged.cloudsim.server import CloudSim
from tests.e2e.kiosk import Kiosk, write_config
from tests.support.daemon_process import DaemonProcess
from tests.support.mosquitto import Mosquitto

WriteConfig = Callable[[Path, Path, int], None]
"""Writes the daemon's config: `(config_file, data_dir, broker_port)`."""


def default_settings() -> Settings:
    """The cloud most kiosk tests pay against: the shopper confirms a payment code in 1.5 s,
    a mini-program payment is made after 1 s."""
    return Settings(user_paying_s=1.5, native_pay_after_s=1.0)


@contextmanager
def running_kiosk(
    mosquitto: Mosquitto,
    tmp_path: Path,
    data: Path | None = None,
    *,
    extra: str = "",
    payments: Mapping[str, Any] | None = None,
    write: WriteConfig | None = None,
    settings: Settings | None = None,
    env: dict[str, str] | None = None,
    ready_timeout: float = 10.0,
) -> Iterator[Kiosk]:
    """A kiosk on `mosquitto`, its files under `tmp_path` and its data in `data` (default
    `tmp_path / "data"`), killed with its cloud when the block ends.

    The config is `tests.e2e.kiosk.write_config` with `extra` TOML and `payments` overrides,
    unless `write` writes another one (then `extra` and `payments` are not used). `settings`
    is the simulated cloud's behaviour (default `default_settings()`); `env` and
    `ready_timeout` go to the daemon process."""
    data = tmp_path / "data" if data is None else data
    config = tmp_path / "edged.toml"
    if write is None:
        write_config(config, data, mosquitto.port, extra=extra, **(payments or {}))
    else:
        write(config, data, mosquitto.port)
    daemon = DaemonProcess(config, tmp_path / "daemon", env=env or {})
    daemon.start(ready_timeout=ready_timeout)
    sim = CloudSim(
        mosquitto.host,
        mosquitto.port,
        data / "cloudsim",
        default_settings() if settings is None else settings,
        client_id=f"cloudsim-{tmp_path.name}",
    )
    sim.start()
    try:
        kiosk = Kiosk(mosquitto, daemon, sim, data)
        kiosk.wait_ready()
        yield kiosk
    finally:
        daemon.kill()
        sim.stop()
