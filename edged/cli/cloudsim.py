"""`edged cloudsim`: run the simulated mini-program backend against a broker, until stopped."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from edged.cloudsim.scenarios import Scenario, Settings


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "cloudsim",
        help="run the simulated cloud backend (answers payments by scenario, signs results)",
        description="Scenario by the payment code's last two digits: 01 decline, 02 user "
        "paying then paid, 03 never confirms, 04 no answer, 05 pays during the reverse, "
        "06 unknown; any other ending uses --scenario.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="the broker (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=1883, help="its port (default: 1883)")
    parser.add_argument(
        "--keys-dir",
        type=Path,
        default=Path("var/cloudsim"),
        help="where the backend keys live (the daemon's <data_dir>/cloudsim); made if missing",
    )
    choices = [s.value for s in Scenario]
    parser.add_argument(
        "--scenario",
        choices=choices,
        default="success",
        help="how payment-code payments end (default: success)",
    )
    parser.add_argument(
        "--native-scenario",
        choices=choices,
        default="success",
        help="how mini-program QR payments end (default: success)",
    )
    parser.add_argument(
        "--user-paying-s",
        type=float,
        default=3.0,
        help="seconds a shopper takes to confirm on the phone (default: 3)",
    )
    parser.add_argument(
        "--native-pay-after-s",
        type=float,
        default=1.0,
        help="seconds until a shown QR is paid (default: 1)",
    )
    parser.add_argument("--mqtt311", action="store_true", help="MQTT 3.1.1 instead of 5")
    parser.add_argument(
        "--shared", action="store_true", help="subscribe as $share/backend/... (clustered)"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from edged.cloudsim.server import CloudSim
    from edged.runtime.logs import configure_logging

    configure_logging()
    settings = Settings(
        scenario=Scenario(args.scenario),
        native_scenario=Scenario(args.native_scenario),
        user_paying_s=args.user_paying_s,
        native_pay_after_s=args.native_pay_after_s,
    )
    sim = CloudSim(
        args.host,
        args.port,
        args.keys_dir,
        settings,
        mqtt5=not args.mqtt311,
        shared=args.shared,
    )
    try:
        sim.start()
    except (ConnectionError, OSError, ValueError) as exc:
        print(f"edged cloudsim: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"simulated cloud ready on {args.host}:{args.port}", flush=True)
    stop.wait()
    sim.stop()
    print(json.dumps(sim.summary(), indent=2), flush=True)
    return 0
