from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.kiosk import Kiosk
from tests.link.helpers import Observer
from tests.support.kiosk_fixture import running_kiosk
from tests.support.mosquitto import Mosquitto

LIBFAKETIME = next(
    iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))),
    Path("/usr/lib/faketime/libfaketime.so.1"),
)
"""Debian's libfaketime, whatever the architecture (scripts/system-packages.sh installs it)."""
SETTLEMENT_CONFIG = """
[security]
max_clock_skew_s = 259200

[refunds]
query_schedule_s = [0.4, 0.4, 0.8]

[settlement]
timezone = "UTC"
cutover = "04:00"
recon_rounds = 2
"""


@dataclass
class FakeClock:
    """The daemon's wall clock, moved by libfaketime (its monotonic clock is left alone)."""

    file: Path

    def set(self, moment: datetime) -> None:
        offset = round((moment - datetime.now(UTC)).total_seconds())
        temp = self.file.with_suffix(".tmp")
        temp.write_text(f"{offset:+d}\n")
        os.replace(temp, self.file)
        time.sleep(0.05)  # the library re-reads the file on each call (FAKETIME_NO_CACHE)


@pytest.fixture
def clock(tmp_path: Path) -> FakeClock:
    if not LIBFAKETIME.exists():
        raise AssertionError(f"{LIBFAKETIME} is missing: scripts/system-packages.sh installs it")
    fake = FakeClock(tmp_path / "faketime")
    fake.file.write_text("+0\n")
    return fake


@pytest.fixture
def uplink(mosquitto: Mosquitto) -> Iterator[Observer]:
    observer = Observer(mosquitto.host, mosquitto.port, ["edge/v1/e2e/kiosk-1/#"]).start()
    yield observer
    observer.stop()


def _kiosk(
    mosquitto: Mosquitto, tmp_path: Path, env: dict[str, str], ready_timeout: float
) -> Iterator[Kiosk]:
    with running_kiosk(
        mosquitto, tmp_path, extra=SETTLEMENT_CONFIG, env=env, ready_timeout=ready_timeout
    ) as kiosk:
        yield kiosk


@pytest.fixture
def kiosk(mosquitto: Mosquitto, tmp_path: Path, uplink: Observer) -> Iterator[Kiosk]:
    yield from _kiosk(mosquitto, tmp_path, {}, ready_timeout=10)


@pytest.fixture
def kiosk_with_clock(
    mosquitto: Mosquitto, tmp_path: Path, uplink: Observer, clock: FakeClock
) -> Iterator[Kiosk]:
    """The daemon under libfaketime: its wall clock is what `clock.set` says (monotonic time
    is left alone). The library reads the clock file on every call, so the start is slower."""
    env = {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(clock.file),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    yield from _kiosk(mosquitto, tmp_path, env, ready_timeout=40)
