"""`edged bench checkout` runs end to end on a small load and says what it measured.

The figures themselves are judged by a person reading a full run (see the README); this only
proves the command works, sells what it says, and leaves nothing behind.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edged.cli import main


def test_the_checkout_bench_sells_and_reports_every_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["bench", "checkout", "--sales", "6", "--scans-per-sale", "2", "--dir", str(tmp_path)]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"scan -> cart line committed \+ display: n=12 p50 [\d.]+ ms", out)
    assert re.search(r"durable sale commit \(outbox, fsync\): n=6 p50 [\d.]+ ms", out)
    assert re.search(r"one-row WAL commit with fsync \(1 hop\): p50 [\d.]+ ms", out)
    assert re.search(r"cpu stolen by the hypervisor during the run: [\d.]+ %", out)
    cpu = re.search(r"cpu per sale \(2 scans, payment, settlement, receipt\): ([\d.]+) ms", out)
    assert cpu is not None and float(cpu.group(1)) > 0
    assert "Pi Zero 2 W estimate, x8" in out and "an estimate, not a measurement" in out
    assert list(tmp_path.iterdir()) == [], "the bench's store is removed afterwards"


def test_the_checkout_bench_refuses_an_empty_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "checkout", "--sales", "0"]) == 2
    assert "--sales and --scans-per-sale must be at least 1" in capsys.readouterr().out
