"""`edged check-config FILE`: validate a config offline, as a technician does before install."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edged.cli.common import EXIT_CONFIG, load_or_report


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "check-config", help="validate a config file and exit"
    )
    parser.add_argument("file", type=Path)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    config = load_or_report(args.file)
    if config is None:
        return EXIT_CONFIG
    print(f"{args.file}: ok ({config.device.kind} {config.device.site}/{config.device.id})")
    return 0
