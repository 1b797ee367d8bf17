from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edged.cloudsim.scenarios import Settings
from edged.cloudsim.server import CloudSim
from tests.e2e.kiosk import Kiosk
from tests.screen.browser import chromium
from tests.screen.kiosk_screen import TOKEN, ScreenKiosk, write_screen_config
from tests.support.daemon_process import DaemonProcess
from tests.support.mosquitto import Mosquitto
from tests.support.ports import free_port

StartScreen = Callable[..., ScreenKiosk]


@pytest.fixture
def start_screen(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[StartScreen]:
    """Start a kiosk whose daemon serves the pages: `start_screen(token=..., extra=TOML)`."""
    started: list[tuple[DaemonProcess, CloudSim]] = []

    def start(token: str | None = TOKEN, extra: str = "", before: Any = None) -> ScreenKiosk:
        data = tmp_path / "data"
        config = tmp_path / "edged.toml"
        port = free_port()
        write_screen_config(config, data, mosquitto.port, port, token=token, extra=extra)
        if before is not None:
            before(data)
        daemon = DaemonProcess(config, tmp_path / "daemon")
        daemon.start()
        sim = CloudSim(
            mosquitto.host,
            mosquitto.port,
            data / "cloudsim",
            Settings(user_paying_s=1.5, native_pay_after_s=2.0),
            client_id=f"cloudsim-{tmp_path.name}",
        )
        sim.start()
        started.append((daemon, sim))
        kiosk = Kiosk(mosquitto, daemon, sim, data)
        kiosk.wait_ready()
        screen = ScreenKiosk(kiosk, port)
        screen.wait_page_server()
        return screen

    try:
        yield start
    finally:
        for daemon, sim in started:
            daemon.kill()
            sim.stop()


@pytest.fixture
def screen(start_screen: StartScreen) -> ScreenKiosk:
    return start_screen()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as context:
        yield context


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    browser.clear_cookies()
    page = browser.new_page()
    try:
        yield page
    finally:
        page.close()
