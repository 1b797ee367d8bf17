"""`edged config show`: the running daemon's effective config, key by key, with its origin."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from edged.cli.common import EXIT_CONFIG, add_config_option, load_or_report


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "config",
        help="show the effective config of the running daemon",
        description="The local file, then the fleet, site and device layers pushed over MQTT: "
        "each key with its value (secrets masked) and where it comes from.",
    )
    sub = parser.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = sub.add_parser("show", help="every effective key, its value and its origin")
    add_config_option(show)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from edged.control.client import ControlUnavailable, call

    config = load_or_report(args.config)
    if config is None:
        return EXIT_CONFIG
    try:
        shown: dict[str, Any] = call(config.paths.socket_path(), "config.show", {})
    except (ControlUnavailable, RuntimeError, OSError) as exc:
        print(f"edged config show: the daemon does not answer: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(shown, ensure_ascii=False, indent=2))
        return 0
    width = max((len(key) for key in shown), default=0)
    for key, item in shown.items():
        value = json.dumps(item["value"], ensure_ascii=False)
        print(f"{key.ljust(width)} = {value}  # {item['origin']}")
    return 0
