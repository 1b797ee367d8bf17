"""`edged demo`, the README's first command, runs the whole kiosk and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from edged.services.release.messages import SLOT_OPEN


def test_edged_demo_shows_the_shopper_everything_and_exits_0(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "edged", "demo"],
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for seen in (
        "display │ 农夫山泉 饮用天然水 550ml ¥2.00 | 合计 ¥2.00",
        "合计 ¥10.00",
        "Please confirm the payment on your phone",
        "支付成功 谢谢惠顾 Thank you",
        "receipt:",
        "实付 Paid",
        "charged once; transactions received: 1",
    ):
        assert seen in out, f"{seen!r} missing from:\n{out}"
    assert "134567890123456702" not in out
    assert elapsed < 30
    assert list(tmp_path.glob("edged-demo-*")) == [], "the demo left its data folder behind"


def test_edged_demo_vending_releases_the_door_and_an_order_slot(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edged", "demo", "--vending"],
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for seen in (
        "支付成功 谢谢惠顾 Thank you",
        f"display │ {SLOT_OPEN.format(slot=1)}",
        "door: unlocked once after the PAID commit, opened, closed",
        "placed for slot 2, pickup code",
        f"display │ {SLOT_OPEN.format(slot=2)}",
        "slot 2: unlocked once for the redeemed order, opened, closed",
        "the same code again: 该订单已于 ",
    ):
        assert seen in out, f"{seen!r} missing from:\n{out}"
