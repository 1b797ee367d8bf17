"""`cloud.mode = "simulated"` on an external broker runs no backend: the daemon says so when it
starts, and a payment nobody answers is reversed and parked in doubt with a message the
shopper and staff can act on, never a kiosk waiting for ever."""

from __future__ import annotations

import json
import time
from pathlib import Path

from edged.services.checkout.messages import PAYMENT_IN_DOUBT
from edged.services.payments.states import MSG_REVERSING
from tests.e2e.kiosk import ITEMS, code, write_config
from tests.support.daemon_process import DaemonProcess
from tests.support.mosquitto import Mosquitto


def test_a_payment_with_no_backend_is_reversed_and_staff_are_asked(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = tmp_path / "edged.toml"
    write_config(config, tmp_path / "data", mosquitto.port, reverse_timeout_s=2)
    daemon = DaemonProcess(config, tmp_path / "daemon")
    daemon.start()
    try:
        notes = [json.loads(line) for line in daemon.log_file.read_text().splitlines()
                 if '"config note"' in line]  # fmt: skip
        assert [n["note"] for n in notes] == [
            'cloud.mode = "simulated" with an external broker: this daemon runs no simulated '
            "backend; it expects `edged cloudsim` (or a real backend) on "
            f"127.0.0.1:{mosquitto.port}; without one a payment gets no answer and is reversed "
            "after payments.deadline_s (5 s), and no goods are released"
        ]
        deadline = time.monotonic() + 20
        while not daemon.control("status")["checkout"]["recovered"]:  # READY comes before
            assert time.monotonic() < deadline
            time.sleep(0.05)
        daemon.control("sim.scan", {"code": ITEMS[0]})
        daemon.control("sim.scan", {"code": code("00")})

        deadline = time.monotonic() + 30
        frames: list[str] = []
        while time.monotonic() < deadline:
            frames = [line.removeprefix("[display] ")
                      for line in daemon.log_file.read_text(errors="replace").splitlines()
                      if line.startswith("[display] ")]  # fmt: skip
            if any(PAYMENT_IN_DOUBT in f for f in frames):
                break
            time.sleep(0.1)
        assert any(MSG_REVERSING in f for f in frames), frames
        assert any(PAYMENT_IN_DOUBT in f for f in frames), frames
        status = daemon.control("status")
        assert status["checkout"].get("last_paid_sale") in (None, "")
        assert "payment parked in doubt" in daemon.log_file.read_text()
    finally:
        daemon.kill()
