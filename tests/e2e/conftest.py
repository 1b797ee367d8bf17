from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.kiosk import Kiosk
from tests.support.kiosk_fixture import running_kiosk
from tests.support.mosquitto import Mosquitto


@pytest.fixture
def kiosk(mosquitto: Mosquitto, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Kiosk]:
    """A kiosk; `parametrize("kiosk", [{...}], indirect=True)` overrides [payments] settings."""
    with running_kiosk(mosquitto, tmp_path, payments=getattr(request, "param", {})) as kiosk:
        yield kiosk
