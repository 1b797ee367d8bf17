"""The development default pays out of the box: embedded broker, simulated cloud, sim devices."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.daemon_process import DaemonProcess


def test_edged_run_with_defaults_takes_a_payment(tmp_path: Path) -> None:
    config = tmp_path / "edged.toml"
    config.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    daemon = DaemonProcess(config, tmp_path / "run")
    ready_s = daemon.start()
    try:
        deadline = time.monotonic() + 20
        while not daemon.control("status")["checkout"]["recovered"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        daemon.control("sim.scan", {"code": "6901028075831"})
        daemon.control("sim.scan", {"code": "134567890123456789"})
        while daemon.control("status")["checkout"]["print_queue"]["printed"] < 1:
            assert time.monotonic() < deadline, daemon.log_tail()
            time.sleep(0.1)
        status = daemon.control("status")
        assert status["payments"]["last"]["state"] == "paid"
        assert status["link"]["protocol"] == "mqtt5"  # Mosquitto is installed here
        assert ready_s < 5
    finally:
        daemon.kill()
