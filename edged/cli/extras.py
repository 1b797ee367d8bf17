"""`edged extras FILE`: what to install for the drivers a config names (used by the installer)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edged.cli.common import EXIT_CONFIG, load_or_report


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "extras",
        help="print what the config's drivers need installed",
        description=(
            "Print the edged extras the config's drivers need, comma-separated (for "
            "pip install 'edged[...]'), or with --apt the Debian packages, one per line. "
            "firmware-tools/install.sh uses both."
        ),
    )
    parser.add_argument("file", type=Path, help="the TOML config file")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--apt", action="store_true", help="print Debian packages instead")
    what.add_argument(
        "--unit",
        action="store_true",
        help="print a systemd drop-in allowing exactly the configured devices",
    )
    what.add_argument(
        "--groups", action="store_true", help="print the device groups the service user needs"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from edged.config.extras import needs

    config = load_or_report(args.file)
    if config is None:
        return EXIT_CONFIG
    found = needs(config)
    if args.apt:
        for package in found.apt:
            print(package)
    elif args.unit:
        print(found.unit_dropin(), end="")
    elif args.groups:
        print(",".join(found.groups))
    else:
        print(",".join(found.extras))
    return 0
