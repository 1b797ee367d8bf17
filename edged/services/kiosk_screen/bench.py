"""`edged bench screen`: scan -> kiosk page updated in headless Chromium, and what the web
server costs, measured in one run against two real daemon processes.

The same development-default daemon (embedded broker, simulated cloud and devices) starts
twice: without the screen, then with it and one Chromium page connected. Each start is
timed to READY=1 on a real $NOTIFY_SOCKET; resident memory (VmRSS) is read once the daemon
has been idle for a while. Then scans go in through the control socket (`sim.scan`, the path
a real scan takes) and the page itself stamps when it has put each numbered change on screen.
Needs the dev extra (Playwright's client) and Debian's chromium.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edged.control.client import call

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ITEMS = ("6901028075831", "6934567890122", "6902300101019", "6923456000018")
SETTLE_S = 3.0
BASKET_LINES = 8
"""The basket is cancelled after this many scans, so the page renders a realistic basket."""


@dataclass(frozen=True)
class ScreenBench:
    scans: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    answered_p50_ms: float
    answered_p99_ms: float
    """The same scans until `sim.scan` answered (checkout handled it, the feed has it)."""
    load_average: float
    rss_without_kb: int
    rss_with_kb: int
    ready_without_s: float
    ready_with_s: float


class _Daemon:
    def __init__(self, folder: Path, screen_port: int | None) -> None:
        self.folder = folder
        folder.mkdir(parents=True)
        screen = (
            f"[screen]\nenabled = true\nport = {screen_port}\n" if screen_port is not None else ""
        )
        self.config = folder / "edged.toml"
        self.config.write_text(
            f'[paths]\ndata_dir = "{folder / "data"}"\n'
            '[display]\ndriver = "sim"\necho = false\n' + screen,
            encoding="utf-8",
        )
        self.socket_path = folder / "data" / "edged.sock"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20.0) -> float:
        notify_path = self.folder / "notify.sock"
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(notify_path))
        log = (self.folder / "daemon.log").open("ab")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edged", "run", "--config", str(self.config)],
            cwd=self.folder,
            env={**os.environ, "NOTIFY_SOCKET": str(notify_path)},
            stdout=log,
            stderr=log,
        )
        try:
            deadline = started + timeout_s
            while True:
                notify.settimeout(max(0.01, deadline - time.monotonic()))
                if b"READY=1" in notify.recv(4096):
                    return time.monotonic() - started
        except TimeoutError:
            raise RuntimeError(
                f"no READY=1 in {timeout_s} s; see {self.folder}/daemon.log"
            ) from None
        finally:
            notify.close()

    def control(self, command: str, args: dict[str, Any] | None = None) -> Any:
        return call(self.socket_path, command, args)

    def rss_kb(self) -> int:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_recovered(daemon: _Daemon) -> None:
    deadline = time.monotonic() + 30
    while not daemon.control("status")["checkout"]["recovered"]:
        if time.monotonic() > deadline:
            raise RuntimeError("checkout did not recover payments within 30 s")
        time.sleep(0.05)


def _p99(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def run_screen_bench(scans: int) -> ScreenBench:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="edged-bench-screen-") as tmp:
        root = Path(tmp)
        plain = _Daemon(root / "without", None)
        try:
            ready_without = plain.start()
            time.sleep(SETTLE_S)
            rss_without = plain.rss_kb()
        finally:
            plain.stop()

        port = _free_port()
        daemon = _Daemon(root / "with", port)
        try:
            ready_with = daemon.start()
            _wait_recovered(daemon)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
                )
                # bypass_csp: the page functions below are evaluated strings, which the
                # page's own CSP forbids.
                page = browser.new_page(viewport={"width": 1280, "height": 800}, bypass_csp=True)
                page.goto(f"http://127.0.0.1:{port}/")
                page.wait_for_selector('#screen[data-kind="welcome"]')
                time.sleep(SETTLE_S)
                rss_with = daemon.rss_kb()
                sent: dict[int, float] = {}
                answered: list[float] = []
                for n in range(scans):
                    if n and n % BASKET_LINES == 0:
                        daemon.control("cart.cancel")
                    seq = int(daemon.control("status")["screen"]["seq"]) + 1
                    sent[seq] = time.time() * 1000
                    daemon.control("sim.scan", {"code": ITEMS[n % len(ITEMS)]})
                    answered.append(time.time() * 1000 - sent[seq])
                last = max(sent)
                page.wait_for_function(f"window.edgedScreen.seq() >= {last}")
                shown = {
                    int(r["seq"]): float(r["at"])
                    for r in page.evaluate("window.edgedScreen.rendered")
                }
                browser.close()
        finally:
            daemon.stop()

    missing = [seq for seq in sent if seq not in shown]
    if missing:
        raise RuntimeError(f"{len(missing)} changes never reached the page, e.g. {missing[:3]}")
    latencies = sorted(shown[seq] - at for seq, at in sent.items())
    answered.sort()
    return ScreenBench(
        scans=scans,
        p50_ms=statistics.median(latencies),
        p99_ms=_p99(latencies),
        max_ms=latencies[-1],
        answered_p50_ms=statistics.median(answered),
        answered_p99_ms=_p99(answered),
        load_average=os.getloadavg()[0],
        rss_without_kb=rss_without,
        rss_with_kb=rss_with,
        ready_without_s=ready_without,
        ready_with_s=ready_with,
    )
