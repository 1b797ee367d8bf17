from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edged.cloudsim.scenarios import Settings
from edged.cloudsim.server import CloudSim
from tests.e2e.kiosk import Kiosk, write_config
from tests.support.daemon_process import DaemonProcess
from tests.support.mosquitto import Mosquitto


@pytest.fixture
def kiosk(mosquitto: Mosquitto, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Kiosk]:
    """A kiosk; `parametrize("kiosk", [{...}], indirect=True)` overrides [payments] settings."""
    data = tmp_path / "data"
    config = tmp_path / "edged.toml"
    write_config(config, data, mosquitto.port, **getattr(request, "param", {}))
    daemon = DaemonProcess(config, tmp_path / "daemon")
    daemon.start()
    sim = CloudSim(
        mosquitto.host,
        mosquitto.port,
        data / "cloudsim",
        Settings(user_paying_s=1.5, native_pay_after_s=1.0),
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
