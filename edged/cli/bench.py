"""`edged bench ...`: benchmarks, apart from the test suite, each printing its ratio last.

Each benchmark is a sub-subcommand registered by a function in BENCHES, so another one
(`bench checkout`, `bench decode`) is one more function appended there.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any


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
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=None, help="in-flight window")
    parser.add_argument("--host", default=None, help="broker (default: start a mosquitto)")
    parser.add_argument("--port", type=int, default=1883)
    parser.set_defaults(handler=_drain)


def _drain(args: argparse.Namespace) -> int:
    from edged.config.models import Link
    from edged.link.drain_bench import run_drain_bench

    if args.messages < 1:
        print("edged bench drain: --messages must be at least 1")
        return 2
    window = args.window or Link().inflight_window
    result = run_drain_bench(args.messages, window, args.host, args.port if args.host else None)
    print(f"messages: {result.messages}  window: {result.window}")
    print(f"raw paho QoS 1 publish: {result.raw_rate:,.0f} msg/s")
    print(f"outbox drain: {result.drain_rate:,.0f} msg/s")
    print(
        f"drain {result.drain_rate:,.0f} msg/s / raw {result.raw_rate:,.0f} msg/s"
        f" = {result.ratio:.2f}"
    )
    return 0


def _add_checkout(benches: Any) -> None:
    parser: argparse.ArgumentParser = benches.add_parser(
        "checkout", help="scan -> committed cart line p99, and durable sale commit p99"
    )
    parser.add_argument("--sales", type=int, default=400)
    parser.add_argument("--scans-per-sale", type=int, default=5)
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
        verdict = "ok" if figures.p99_ms <= budget else "OVER BUDGET"
        print(
            f"{label}: n={figures.count} p50 {figures.p50_ms:.2f} ms  "
            f"p99 {figures.p99_ms:.2f} ms  max {figures.max_ms:.2f} ms  "
            f"(budget p99 <= {budget:g} ms: {verdict})"
        )
    for label, figures in (
        ("machine floor, one-row WAL commit with fsync (1 hop)", result.bare_commit),
        ("machine floor, one empty thread hop", result.bare_hop),
    ):
        print(f"{label}: p50 {figures.p50_ms:.2f} ms  p99 {figures.p99_ms:.2f} ms")
    ratio = result.commit.p99_ms / result.bare_commit.p99_ms
    print(f"durable sale commit p99 / bare commit p99 = {ratio:.2f}")
    if result.steal_percent is not None:
        print(f"cpu stolen by the hypervisor during the run: {result.steal_percent:.1f} %")
    return 0


def _add_decode(benches: Any) -> None:
    parser: argparse.ArgumentParser = benches.add_parser(
        "decode", help="median ms per 640x480 frame for zxing-cpp and pyzbar (hit, miss, Chinese)"
    )
    parser.add_argument("--frames", type=int, default=200)
    parser.set_defaults(handler=_decode)


def _decode(args: argparse.Namespace) -> int:
    from hal.camera.bench import run_decoder_bench

    if args.frames < 1:
        print("edged bench decode: --frames must be at least 1")
        return 2
    print(run_decoder_bench(args.frames))
    return 0


def _add_fleet(benches: Any) -> None:
    parser: argparse.ArgumentParser = benches.add_parser(
        "fleet", help="push a fleet layer to N daemon processes, then one that rolls back"
    )
    parser.add_argument("--daemons", type=int, default=50)
    parser.add_argument("--grace-s", type=int, default=20, help="health gate of the layers")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per phase")
    parser.set_defaults(handler=_fleet)


def _fleet(args: argparse.Namespace) -> int:
    from edged.app.fleet_bench import main_json

    return main_json(args.daemons, args.grace_s, args.timeout)


BENCHES: list[Callable[[Any], None]] = [_add_drain, _add_checkout, _add_decode, _add_fleet]
