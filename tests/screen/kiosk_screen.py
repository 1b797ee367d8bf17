"""A whole kiosk with its screen: real Mosquitto, the daemon as a process serving the pages,
the simulated cloud, and the page in headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edged.services.stock.catalog import bundled_seed
from tests.e2e.kiosk import Kiosk, write_config
from tests.support.ports import free_port, wait_for_port

TOKEN = "tech-token-7f3a9c"
XSS_BARCODE = "6900000000014"
XSS_NAME = "<script>pwned=1</script><img src=x onerror=pwned=2>"


def catalog_csv() -> str:
    """The bundled catalog plus one product whose name is markup, as a hostile cloud might
    send it."""
    text = bundled_seed()
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([XSS_BARCODE, XSS_NAME, 100, 10])
    return text.rstrip("\n") + "\n" + out.getvalue()


def write_screen_config(
    path: Path, data: Path, broker_port: int, web_port: int, *, token: str | None, extra: str = ""
) -> None:
    write_config(path, data, broker_port)
    if "[display]" in extra:  # the e2e config ends with its [display]; this one replaces it
        text = path.read_text(encoding="utf-8")
        path.write_text(text[: text.rindex("[display]")], encoding="utf-8")
    catalog = path.parent / "catalog.csv"
    catalog.write_text(catalog_csv(), encoding="utf-8")
    security = f'\n[security]\ntechnician_token = "{token}"\n' if token else ""
    with path.open("a", encoding="utf-8") as config:
        config.write(
            f"""
[checkout]
catalog_seed = "{catalog}"
shop_name = "edged 测试店"

[screen]
enabled = true
host = "127.0.0.1"
port = {web_port}
{security}{extra}"""
        )


@dataclass
class ScreenKiosk:
    kiosk: Kiosk
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def wait_page_server(self) -> None:
        wait_for_port(self.port, timeout=10)

    def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(self.url.rstrip("/") + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, dict(answer.headers), answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()

    def status(self) -> dict[str, Any]:
        return self.kiosk.status()

    def wait(
        self, what: str, check: Callable[[dict[str, Any]], bool], timeout: float = 20
    ) -> dict[str, Any]:
        return self.kiosk.wait(what, check, timeout)


def poll(what: str, check: Callable[[], Any], timeout: float = 10, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(
        f"not {what} within {timeout} s (last: {json.dumps(last, default=str)[:500]})"
    )


def free_web_port() -> int:
    return free_port()
