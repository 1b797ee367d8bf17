"""Screenshots of the kiosk page in each state and of the technician page, for docs/.

    python -m tests.screen.screenshots docs/screenshots

Runs the development default (embedded broker, simulated cloud and devices) with the screen
on, drives it like a shopper and a technician, and writes one PNG per state.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from tests.e2e.kiosk import ITEMS, code
from tests.screen.browser import chromium
from tests.screen.kiosk_screen import TOKEN
from tests.screen.test_screen_socket import STOP_SALES_EARLY, fill_store
from tests.support.daemon_process import DaemonProcess
from tests.support.ports import free_port, wait_for_port


def config(folder: Path, port: int, extra: str = "") -> Path:
    path = folder / "edged.toml"
    path.write_text(
        f"""
[paths]
data_dir = "{folder / "data"}"

[checkout]
shop_name = "edged 演示商店"

[security]
technician_token = "{TOKEN}"

[screen]
enabled = true
port = {port}

[display]
driver = "serial"
port = "/dev/edged-display"
{extra}""",
        encoding="utf-8",
    )
    return path


def start(folder: Path, extra: str = "", before: Any = None) -> tuple[DaemonProcess, int]:
    folder.mkdir(parents=True, exist_ok=True)
    if before is not None:
        before(folder / "data")
    port = free_port()
    daemon = DaemonProcess(config(folder, port, extra), folder / "daemon")
    daemon.start()
    deadline = time.monotonic() + 30
    while not daemon.control("status")["checkout"]["recovered"]:
        if time.monotonic() > deadline:
            raise RuntimeError("checkout did not recover")
        time.sleep(0.05)
    wait_for_port(port)
    return daemon, port


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    with TemporaryDirectory() as tmp, chromium() as browser:
        page: Any = browser.new_page()

        def shot(name: str) -> None:
            page.wait_for_timeout(150)
            page.screenshot(path=str(out / f"{name}.png"))
            print(out / f"{name}.png")

        daemon, port = start(Path(tmp) / "kiosk")
        try:
            url = f"http://127.0.0.1:{port}/"
            page.goto(url)
            page.wait_for_selector('#screen[data-kind="welcome"]')
            shot("kiosk-1-welcome")
            for item in ITEMS:
                daemon.control("sim.scan", {"code": item})
            daemon.control("cart.qty", {"line": 2, "quantity": 2})
            page.wait_for_selector('.item[data-line="3"]')
            page.wait_for_function("document.querySelector('#total').textContent === '¥13.50'")
            shot("kiosk-2-basket-zh")
            page.click("#language")
            shot("kiosk-3-basket-en")
            page.click("#language")
            daemon.control("sim.scan", {"code": "6900000000007"})
            page.wait_for_selector('#banner[data-tone="warn"]')
            shot("kiosk-4-unknown-barcode")
            page.click("#pay-qr")
            page.wait_for_selector('#screen[data-kind="qr"]')
            page.wait_for_function("document.querySelector('#qr-image').naturalWidth > 0")
            shot("kiosk-5-pay-in-mini-program-qr")
            page.wait_for_selector('#screen[data-kind="paid"]', timeout=20_000)
            shot("kiosk-7-thank-you")
            page.wait_for_selector('#screen[data-kind="welcome"]', timeout=20_000)
            daemon.control("sim.scan", {"code": ITEMS[0]})
            daemon.control("sim.scan", {"code": code("02")})  # the cloud says: user paying
            page.wait_for_function(
                "document.querySelector('#screen').dataset.kind === 'paying' &&"
                " document.querySelector('#paying-message').textContent.includes('phone')",
                timeout=10_000,
            )
            shot("kiosk-6-confirm-on-phone")
            page.wait_for_selector('#screen[data-kind="welcome"]', timeout=20_000)
            page.click("#call-staff")
            shot("kiosk-8-call-staff")
            page.click("#staff-close")

            tech = browser.new_page()
            tech.goto(url + "tech")
            tech.wait_for_selector("#token")
            tech.screenshot(path=str(out / "tech-1-login.png"))
            tech.fill("#token", TOKEN)
            tech.click("#login")
            tech.wait_for_selector('#devices .device[data-kind="display"]')
            tech.click("#reprint-newest")
            tech.wait_for_function(
                "document.querySelector('#reprint-result').textContent === 'reprint queued'"
            )
            tech.wait_for_timeout(1500)
            tech.screenshot(path=str(out / "tech-2-page.png"), full_page=True)
            print(out / "tech-2-page.png")
            tech.close()

            daemon.kill()
            page.wait_for_selector("#offline:not([hidden])")
            shot("kiosk-9-reconnecting")
        finally:
            daemon.kill()

        stopped, port = start(Path(tmp) / "full", STOP_SALES_EARLY, fill_store)
        try:
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#out-of-service:not([hidden])")
            shot("kiosk-10-out-of-service")
        finally:
            stopped.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")))
