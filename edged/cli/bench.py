"""`edged bench ...`: benchmarks, apart from the test suite, each printing its ratio last.

Each benchmark is a sub-subcommand registered by a function in BENCHES, so another one
(`bench checkout`, `bench decode`) is one more function appended there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edged.services.checkout.bench import Percentiles


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "bench", help="run a benchmark and print its figures"
    )
    benches = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for add in BENCHES:
        add(benches)


def _add_drain(benches: Any) -> None:
    parser: argparse.ArgumentParser = benches.add_parser(
        "drain", help="outbox drain rate vs raw paho-mqtt QoS 1 publish rate"
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=100_000,
        help="messages published each way (default: 100000)",
    )
    parser.add_argument("--window", type=int, default=None, help="in-flight window")
    parser.add_argument("--host", default=None, help="broker (default: start a mosquitto)")
    parser.add_argument(
        "--port", type=int, default=1883, help="the Mosquitto port on 127.0.0.1 (default: 1883)"
    )
    parser.add_argument(
        "--while-selling",
        action="store_true",
        help="a shopper keeps scanning and paying while the backlog drains (same process)",
    )
    parser.add_argument("--scan-interval-ms", type=float, default=10.0, help="with --while-selling")
    parser.set_defaults(handler=_drain)


def _drain(args: argparse.Namespace) -> int:
    from edged.config.models import Link
    from edged.link.drain_bench import run_drain_bench

    if args.messages < 1:
        print("edged bench drain: --messages must be at least 1")
        return 2
    window = args.window or Link().inflight_window
    if args.while_selling:
        return _drain_while_selling(args, window)
    result = run_drain_bench(args.messages, window, args.host, args.port if args.host else None)
    print(f"messages: {result.messages}  window: {result.window}")
    print(f"raw paho QoS 1 publish: {result.raw_rate:,.0f} msg/s")
    print(f"outbox drain: {result.drain_rate:,.0f} msg/s")
    print(
        f"drain {result.drain_rate:,.0f} msg/s / raw {result.raw_rate:,.0f} msg/s"
        f" = {result.ratio:.2f}"
    )
    return 0


def _drain_while_selling(args: argparse.Namespace, window: int) -> int:
    from edged.app.drain_selling_bench import run_drain_while_selling
    from edged.services.checkout.bench import COMMIT_BUDGET_MS, SCAN_BUDGET_MS

    r = run_drain_while_selling(
        args.messages,
        window,
        args.scan_interval_ms / 1000,
        host=args.host,
        port=args.port if args.host else None,
    )
    print(
        f"messages: {r.messages}  window: {r.window}  shopper: a scan every "
        f"{args.scan_interval_ms:g} ms, {r.sales} sales during the drain"
    )
    print(f"raw paho QoS 1 publish: {r.raw_rate:,.0f} msg/s")
    print(f"outbox drain while selling: {r.drain_rate:,.0f} msg/s")
    for label, figures, budget in (
        ("scan -> cart line committed + display, during the drain", r.scan, SCAN_BUDGET_MS),
        ("durable sale commit (outbox, fsync), during the drain", r.commit, COMMIT_BUDGET_MS),
    ):
        print(_against_budget(label, figures, budget))
    print(
        f"a sale's evt/txn, commit -> delivered, behind the backlog: n={r.txn_wait.count} "
        f"p50 {r.txn_wait.p50_ms:.0f} ms  p99 {r.txn_wait.p99_ms:.0f} ms"
    )
    print(
        f"cpu per drained message (whole process, shopper included): "
        f"{r.cpu_ms_per_message * 1000:.0f} us; raw paho: {r.raw_cpu_ms_per_message * 1000:.0f} us"
    )
    if r.steal_percent is not None:
        print(f"cpu stolen by the hypervisor during the run: {r.steal_percent:.1f} %")
    print(
        f"load average at the end (runnable processes, {os.cpu_count()} cores): "
        f"{r.load_average:.1f}"
    )
    print(f"drain {r.drain_rate:,.0f} msg/s / raw {r.raw_rate:,.0f} msg/s = {r.ratio:.2f}")
    return 0


def _add_checkout(benches: Any) -> None:
    parser: argparse.ArgumentParser = benches.add_parser(
        "checkout", help="scan -> committed cart line p99, and durable sale commit p99"
    )
    parser.add_argument("--sales", type=int, default=400, help="sales to ring up (default: 400)")
    parser.add_argument(
        "--scans-per-sale", type=int, default=5, help="items scanned per sale (default: 5)"
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the on-disk store goes (default: $TMPDIR)"
    )
    parser.set_defaults(handler=_checkout)


def _checkout(args: argparse.Namespace) -> int:
    from edged.services.checkout.bench import (
        COMMIT_BUDGET_MS,
        SCAN_BUDGET_MS,
        run_checkout_bench,
    )

    if args.sales < 1 or args.scans_per_sale < 1:
        print("edged bench checkout: --sales and --scans-per-sale must be at least 1")
        return 2
    result = asyncio.run(run_checkout_bench(args.sales, args.scans_per_sale, args.dir))
    for label, figures, budget in (
        ("scan -> cart line committed + display", result.scan, SCAN_BUDGET_MS),
        ("durable sale commit (outbox, fsync)", result.commit, COMMIT_BUDGET_MS),
    ):
        print(_against_budget(label, figures, budget))
    for label, figures in (
        ("machine floor, one-row WAL commit with fsync (1 hop)", result.bare_commit),
        ("machine floor, one empty thread hop", result.bare_hop),
    ):
        print(f"{label}: p50 {figures.p50_ms:.2f} ms  p99 {figures.p99_ms:.2f} ms")
    ratio = result.commit.p99_ms / result.bare_commit.p99_ms
    print(f"durable sale commit p99 / bare commit p99 = {ratio:.2f}")
    if result.steal_percent is not None:
        print(f"cpu stolen by the hypervisor during the run: {result.steal_percent:.1f} %")
    print(
        f"cpu per sale ({args.scans_per_sale} scans, payment, settlement, receipt): "
        f"{result.cpu_per_sale_ms:.2f} ms  (Pi Zero 2 W estimate, x{PI_ZERO_2W_FACTOR:g}: "
        f"{result.cpu_per_sale_ms * PI_ZERO_2W_FACTOR:.0f} ms; an estimate, not a measurement)"
    )
    return 0


PI_ZERO_2W_FACTOR = 8.0
"""How much slower one Cortex-A53 core at 1 GHz runs this Python code than one core of
this CI machine: an estimate (DESIGN.md section 9 says 5-10x), stated as one."""


def _add_decode(benches: Any) -> None:
    parser: argparse.ArgumentParser = benches.add_parser(
        "decode", help="median ms per 640x480 frame for zxing-cpp and pyzbar (hit, miss, Chinese)"
    )
    parser.add_argument(
        "--frames", type=int, default=200, help="frames decoded per case (default: 200)"
    )
    parser.set_defaults(handler=_decode)


def _decode(args: argparse.Namespace) -> int:
    from hal.camera.bench import run_decoder_bench

    if args.frames < 1:
        print("edged bench decode: --frames must be at least 1")
        return 2
    print(run_decoder_bench(args.frames))
    return 0


def _add_screen(benches: Any) -> None:
    parser: argparse.ArgumentParser = benches.add_parser(
        "screen", help="scan -> kiosk page updated (Chromium) p50/p99, and the RSS it adds"
    )
    parser.add_argument("--scans", type=int, default=300, help="scans to time (default: 300)")
    parser.set_defaults(handler=_screen)


def _screen(args: argparse.Namespace) -> int:
    from edged.services.kiosk_screen.bench import run_screen_bench

    if args.scans < 1:
        print("edged bench screen: --scans must be at least 1")
        return 2
    r = run_screen_bench(args.scans)
    print(f"scans: {r.scans}  (sim.scan over the control socket -> the page's DOM updated)")
    print(
        f"scan -> page updated: p50 {r.p50_ms:.1f} ms  p99 {r.p99_ms:.1f} ms  max {r.max_ms:.1f} ms"
    )
    print(
        f"sim.scan answered (checkout handled it): p50 {r.answered_p50_ms:.1f} ms"
        f"  p99 {r.answered_p99_ms:.1f} ms"
    )
    print(f"load average (1 min) at the end: {r.load_average:.1f} on {os.cpu_count()} cores")
    print(
        f"start to READY: {r.ready_without_s * 1000:.0f} ms without the screen, "
        f"{r.ready_with_s * 1000:.0f} ms with it"
    )
    added = (r.rss_with_kb - r.rss_without_kb) / 1024
    print(
        f"idle RSS: {r.rss_without_kb / 1024:.1f} MB without the screen, "
        f"{r.rss_with_kb / 1024:.1f} MB with it and one page connected: +{added:.1f} MB"
    )
    print(f"p99 {r.p99_ms:.1f} ms / budget 50 ms = {r.p99_ms / 50:.2f}")
    return 0


def _add_herd(benches: Any) -> None:
    parser: argparse.ArgumentParser = benches.add_parser(
        "herd", help="N daemon processes on one mosquitto, the broker restarted under them"
    )
    parser.add_argument(
        "--daemons", type=int, default=50, help="daemon processes to start (default: 50)"
    )
    parser.add_argument("--down-s", type=float, default=5.0, help="how long the broker is down")
    parser.add_argument(
        "--reconnect-min-s", type=float, default=0.5, help="each daemon's link.reconnect_min_s"
    )
    parser.add_argument(
        "--reconnect-max-s", type=float, default=60.0, help="each daemon's link.reconnect_max_s"
    )
    parser.set_defaults(handler=_herd)


def _herd(args: argparse.Namespace) -> int:
    from edged.app.herd_bench import run_herd

    if args.daemons < 1 or args.down_s < 0:
        print("edged bench herd: --daemons must be at least 1 and --down-s not negative")
        return 2
    r = run_herd(args.daemons, args.down_s, args.reconnect_min_s, args.reconnect_max_s)
    print(
        f"daemons: {r.daemons}  broker down: {r.down_s:g} s  reconnect back-off: full jitter "
        f"{r.reconnect_min_s:g}..{r.reconnect_max_s:g} s"
    )
    print(
        f"resident memory of the daemons: {r.rss_mb:,.0f} MB ({r.rss_mb / r.daemons:.0f} MB each)"
    )
    print(f"reconnected: {r.reconnected}/{r.daemons}")
    print(
        f"reconnect spread: {r.spread_s:.2f} s first to last; "
        f"the last {r.last_after_start_s:.2f} s after the broker was back"
    )
    print(f"connection attempts in any one second (daemons' logs): at most {r.max_attempts_per_s}")
    print(
        f"connects in any one second: at most {r.max_connects_per_s} (daemons' logs), "
        f"{r.broker_max_connects_per_s} (broker's log, per wall-clock second)"
    )
    return 0


def _add_fleet(benches: Any) -> None:
    parser: argparse.ArgumentParser = benches.add_parser(
        "fleet", help="push a fleet layer to N daemon processes, then one that rolls back"
    )
    parser.add_argument(
        "--daemons", type=int, default=50, help="daemon processes to start (default: 50)"
    )
    parser.add_argument("--grace-s", type=int, default=20, help="health gate of the layers")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per phase")
    parser.set_defaults(handler=_fleet)


def _fleet(args: argparse.Namespace) -> int:
    from edged.app.fleet_bench import main_json

    return main_json(args.daemons, args.grace_s, args.timeout)


BENCHES: list[Callable[[Any], None]] = [
    _add_drain,
    _add_checkout,
    _add_decode,
    _add_herd,
    _add_screen,
    _add_fleet,
]


def _against_budget(label: str, figures: Percentiles, budget: float) -> str:
    """One latency line: count, p50, p99, max, and the p99 against its budget. Below 100
    samples the 99th percentile is the largest one, so the line says so."""
    verdict = "ok" if figures.p99_ms <= budget else "OVER BUDGET"
    few = "; n < 100, so p99 is the max: sample more" if figures.count < 100 else ""
    return (
        f"{label}: n={figures.count} p50 {figures.p50_ms:.2f} ms  "
        f"p99 {figures.p99_ms:.2f} ms  max {figures.max_ms:.2f} ms  "
        f"(budget p99 <= {budget:g} ms: {verdict}{few})"
    )
