"""`edged status`: ask a running daemon over its control socket."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from edged.cli.common import EXIT_CONFIG, add_config_option, load_or_report
from edged.control.client import ControlUnavailable, call

EXIT_UNAVAILABLE = 3


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "status", help="print a running daemon's state as JSON"
    )
    add_config_option(parser)
    parser.set_defaults(handler=handle_status)


def send(args: argparse.Namespace, command: str, payload: dict[str, Any] | None = None) -> int:
    """Send one control command to the daemon the config points at and print the result."""
    config = load_or_report(args.config)
    if config is None:
        return EXIT_CONFIG
    try:
        result = call(config.paths.socket_path(), command, payload)
    except ControlUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_UNAVAILABLE
    except RuntimeError as exc:
        print(f"edged: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def handle_status(args: argparse.Namespace) -> int:
    return send(args, "status")
