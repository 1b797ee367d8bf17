"""`edged bench drain --while-selling` runs end to end on a small backlog and prints every
figure it promises, in one run; the figures themselves are read from a full run."""

from __future__ import annotations

import re

import pytest

from edged.cli import main


def test_drain_while_selling_prints_raw_drain_ratio_and_the_shoppers_latencies(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["bench", "drain", "--messages", "3000", "--while-selling"])
    out = capsys.readouterr().out
    assert code == 0, out
    raw = re.search(r"raw paho QoS 1 publish: ([\d,]+) msg/s", out)
    drain = re.search(r"outbox drain while selling: ([\d,]+) msg/s", out)
    ratio = re.search(r"drain [\d,]+ msg/s / raw [\d,]+ msg/s = ([\d.]+)$", out.strip())
    assert raw and drain and ratio, out
    rate = {k: float(m.group(1).replace(",", "")) for k, m in (("raw", raw), ("drain", drain))}
    assert abs(float(ratio.group(1)) - rate["drain"] / rate["raw"]) < 0.011
    sales = re.search(r"(\d+) sales during the drain", out)
    assert sales is not None and int(sales.group(1)) >= 1, "the shopper bought while it drained"
    for label in ("scan -> cart line committed \\+ display", "durable sale commit"):
        assert re.search(rf"{label}.*, during the drain: n=\d+ p50 [\d.]+ ms\s+p99 [\d.]+ ms", out)
    assert re.search(r"evt/txn, commit -> delivered, behind the backlog: n=\d+", out)
    assert re.search(r"cpu stolen by the hypervisor during the run: [\d.]+ %", out)
