"""`edged demo`, the README's first command, runs the whole kiosk and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


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
