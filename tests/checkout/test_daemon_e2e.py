"""The real daemon process driven from outside: `edged sim scan` and `edged status`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.checkout.conftest import COLA, WATER, WECHAT_CODE
from tests.support.daemon_process import DaemonProcess


def edged(config: Path, *args: str) -> tuple[int, Any, str]:
    done = subprocess.run(
        [sys.executable, "-m", "edged", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=20,
    )
    out = json.loads(done.stdout) if done.returncode == 0 and done.stdout else None
    return done.returncode, out, done.stderr


def test_scan_through_the_control_socket_and_read_status(tmp_path: Path) -> None:
    config = tmp_path / "edged.toml"
    config.write_text(
        f'[paths]\ndata_dir = "{tmp_path / "data"}"\n\n[checkout]\nshop_name = "测试便利店"\n',
        encoding="utf-8",
    )
    daemon = DaemonProcess(config, tmp_path / "run")
    daemon.start()
    try:
        code, reply, _ = edged(config, "sim", "scan", WATER)
        assert code == 0
        assert reply["state"] == "basket"
        assert reply["display"]["headline"] == "农夫山泉 饮用天然水 550ml ¥2.00"
        edged(config, "sim", "scan", WATER)
        code, reply, _ = edged(config, "sim", "scan", COLA)
        assert reply["display"]["amount"] == "合计 ¥7.50"

        code, reply, _ = edged(config, "sim", "scan", "6901028075832")  # bad check digit
        assert code == 0
        assert reply["display"]["headline"].startswith("无法识别的条码")
        code, reply, _ = edged(config, "cart", "qty", "9", "2")
        assert code == 1 and reply is None

        code, status, _ = edged(config, "status")
        assert code == 0
        checkout = status["checkout"]
        assert checkout["state"] == "basket"
        assert checkout["sale"]["no"] == 1
        assert [(line["barcode"], line["quantity"]) for line in checkout["sale"]["lines"]] == [
            (WATER, 2),
            (COLA, 1),
        ]
        assert checkout["sale"]["total_fen"] == 750
        assert checkout["print_queue"]["queued"] == 0
        tasks = {task["name"]: task["running"] for task in status["tasks"]}
        assert tasks["checkout"] and tasks["print-queue"]

        # The shopper shows a payment code to the camera: the sale leaves the basket.
        code, reply, _ = edged(config, "sim", "camera", WECHAT_CODE)
        assert code == 0
        assert reply["state"] in ("paying", "paid", "receipt", "idle")
        code, status, _ = edged(config, "status")
    finally:
        daemon.terminate()
    # ...the payment code never reached the log, the status or the database.
    assert WECHAT_CODE not in daemon.log_file.read_text(errors="replace")
    assert WECHAT_CODE not in json.dumps(status, ensure_ascii=False)
    for db in (tmp_path / "data").glob("edged.db*"):
        assert WECHAT_CODE.encode() not in db.read_bytes()
