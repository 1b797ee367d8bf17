from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from edged.cloudsim.scenarios import Settings
from tests.screen.browser import chromium
from tests.screen.kiosk_screen import TOKEN, ScreenKiosk, write_screen_config
from tests.support.kiosk_fixture import running_kiosk
from tests.support.mosquitto import Mosquitto
from tests.support.ports import free_port

StartScreen = Callable[..., ScreenKiosk]


@pytest.fixture
def start_screen(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[StartScreen]:
    """Start a kiosk whose daemon serves the pages: `start_screen(token=..., extra=TOML)`."""
    with ExitStack() as started:

        def start(token: str | None = TOKEN, extra: str = "", before: Any = None) -> ScreenKiosk:
            port = free_port()

            def write(config: Path, data: Path, broker_port: int) -> None:
                write_screen_config(config, data, broker_port, port, token=token, extra=extra)
                if before is not None:
                    before(data)

            settings = Settings(user_paying_s=1.5, native_pay_after_s=2.0)
            kiosk = started.enter_context(
                running_kiosk(mosquitto, tmp_path, write=write, settings=settings)
            )
            screen = ScreenKiosk(kiosk, port)
            screen.wait_page_server()
            return screen

        yield start


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
