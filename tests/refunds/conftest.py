from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edged.cloudsim.scenarios import Settings
from tests.e2e.kiosk import Kiosk
from tests.link.helpers import Observer
from tests.support.kiosk_fixture import running_kiosk
from tests.support.mosquitto import Mosquitto

TECHNICIAN_TOKEN = "tech-token-0123456789"
REFUND_CONFIG = f"""
[security]
technician_token = "{TECHNICIAN_TOKEN}"

[refunds]
query_schedule_s = [0.4, 0.4, 0.8]
restock_reasons = ["goods_not_released", "returned"]
"""


@pytest.fixture
def uplink(mosquitto: Mosquitto) -> Iterator[Observer]:
    """An independent subscriber to everything the kiosk publishes (the backend's view)."""
    observer = Observer(mosquitto.host, mosquitto.port, ["edge/v1/e2e/kiosk-1/#"]).start()
    yield observer
    observer.stop()


@pytest.fixture
def kiosk(mosquitto: Mosquitto, tmp_path: Path, uplink: Observer) -> Iterator[Kiosk]:
    settings = Settings(user_paying_s=1.5, native_pay_after_s=1.0, refund_processing_s=1.0)
    with running_kiosk(mosquitto, tmp_path, extra=REFUND_CONFIG, settings=settings) as kiosk:
        yield kiosk
