"""A whole kiosk for end-to-end tests: real Mosquitto, the daemon as a process, the cloudsim.

The simulated cloud runs in the test process (its own paho thread) so a test can read what
the backend recorded (trades, charges, transactions) and forge messages on the broker.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edged.cloudsim.server import CloudSim
from edged.contract.envelope import make_envelope
from edged.contract.signing import sign_envelope
from edged.contract.topics import DeviceTopics
from tests.support.daemon_process import DaemonProcess
from tests.support.mosquitto import Mosquitto

ITEMS = ("6901028075831", "6934567890122", "6902300101019")
ITEMS_TOTAL_FEN = 1000
WECHAT = "1345678901234567"
"""A WeChat Pay code is this plus two digits; the digits pick the cloud's scenario."""


TOPICS = DeviceTopics("e2e", "kiosk-1")
"""The e2e kiosk's topics (the site and id `write_config` gives it)."""


def code(ending: str) -> str:
    return WECHAT + ending


def forged_success(
    trade_no: str, key: Ed25519PrivateKey | None, amount: int = ITEMS_TOTAL_FEN
) -> bytes:
    """A `pay.result` SUCCESS for the e2e kiosk as anyone on the broker may publish it (on
    `TOPICS.downlink(Downlink.PAY)`): signed by `key`, or unsigned when it is None."""
    envelope = make_envelope(
        type="pay.result",
        device=TOPICS.device,
        seq=1,
        body={"trade_no": trade_no, "amount_fen": amount, "state": "SUCCESS"},
        now=datetime.now(UTC),
        clock_synced=True,
        ttl=timedelta(seconds=60),
    )
    return (sign_envelope(envelope, key) if key else envelope).to_bytes()


@dataclass
class Kiosk:
    broker: Mosquitto
    daemon: DaemonProcess
    sim: CloudSim
    data: Path

    def scan(self, text: str) -> dict[str, Any]:
        result: dict[str, Any] = self.daemon.control("sim.scan", {"code": text})
        return result

    def fill_basket(self) -> None:
        for item in ITEMS:
            self.scan(item)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.daemon.control("status")
        return result

    def wait(
        self, what: str, check: Callable[[dict[str, Any]], bool], timeout: float = 20
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status()
            if check(status):
                return status
            time.sleep(0.1)
        raise AssertionError(f"not {what} within {timeout} s: {json.dumps(status)[:1500]}")

    def wait_settled(self, timeout: float = 20) -> dict[str, Any]:
        """No payment in flight and no sale paying: the kiosk is ready for the shopper."""
        return self.wait(
            "settled",
            lambda s: (
                not s["payments"]["busy"]
                and s["checkout"]["state"] in ("idle", "basket")
                and s["checkout"]["print_queue"].get("queued", 0) == 0
            ),
            timeout,
        )

    def payment_state(self, status: dict[str, Any]) -> str | None:
        open_ = status["payments"]["open"]
        return open_[0]["state"] if open_ else None

    def wait_payment_state(self, state: str, timeout: float = 10) -> dict[str, Any]:
        return self.wait(f"payment {state}", lambda s: self.payment_state(s) == state, timeout)

    def receipts(self) -> list[str]:
        folder = self.data / "printer"
        return [p.read_text(encoding="utf-8") for p in sorted(folder.glob("receipt-*.txt"))]

    def rows(self, sql: str) -> list[dict[str, Any]]:
        conn = sqlite3.connect(f"file:{self.data / 'edged.db'}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql)]
        finally:
            conn.close()

    def display_frames(self) -> list[str]:
        """Every view the simulated display showed (it echoes them into the daemon's log)."""
        return [
            line.removeprefix("[display] ")
            for line in self.daemon.log_file.read_text(errors="replace").splitlines()
            if line.startswith("[display] ")
        ]

    def wait_ready(self) -> None:
        """READY is sent before checkout finished recovering payments; scans wait for that.

        Downlinks wait for the link's subscription: a `cmd/*` published before it is lost
        (a first start has no session yet), and checkout may recover before it (no payment
        open, nothing to query)."""
        self.wait(
            "recovered and subscribed",
            lambda s: s["checkout"]["recovered"] and s["link"]["subscribed"],
            timeout=30,
        )

    def restart(self) -> None:
        self.daemon.kill()
        self.daemon.start()
        self.wait_ready()

    def cloud(self) -> dict[str, Any]:
        return self.sim.summary()

    def cloud_txns(self) -> list[dict[str, Any]]:
        """Every evt/txn record the cloud kept (`type` and `body`), in arrival order."""
        with self.sim.lock:
            return [dict(t) for t in self.sim.backend.txns.values()]


def kiosk_toml(data: Path, port: int, payments: Mapping[str, Any], *, device: str = "") -> str:
    """The config every e2e daemon starts from: kiosk-1 of site e2e (`device` adds lines to
    its [device]), its data in `data`, the broker on `port`, a quick reconnect, `payments` as
    the [payments] section and the simulated display echoing into the log, last."""
    lines = "\n".join(f"{k} = {v}" for k, v in payments.items())
    return f"""
[device]
site = "e2e"
id = "kiosk-1"
{device}
[paths]
data_dir = "{data}"

[broker]
mode = "external"
port = {port}

[link]
reconnect_min_s = 0.1
reconnect_max_s = 1

[payments]
{lines}

[display]
driver = "sim"
echo = true
"""


def write_config(path: Path, data: Path, port: int, *, extra: str = "", **payments: Any) -> None:
    settings = {"deadline_s": 5, "query_interval_s": 0.5, "native_qr_ttl_s": 10, **payments}
    path.write_text(kiosk_toml(data, port, settings) + extra, encoding="utf-8")
