"""`edged check-config FILE`: validate a config offline, as a technician does before install."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edged.cli.common import EXIT_CONFIG, load_or_report


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "check-config",
        help="check a config file: keys, values, and the files and keys it names",
        description=(
            "Check a config file the way the daemon will use it: every key and value, the "
            "environment overrides (EDGED_...), and that the TLS files it names exist, are "
            "readable, parse, and that the key matches the certificate. Prints one "
            "'file: key: problem' line per problem and exits 2, or prints 'ok' and exits 0."
        ),
    )
    parser.add_argument("file", type=Path, help="the TOML config file, e.g. /etc/edged/edged.toml")
    parser.add_argument(
        "--user",
        metavar="NAME",
        default=None,
        help="check that this user (the service user, e.g. edged) can read the files "
        "(default: the user running the check)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from edged.config.usable import start_notes

    config = load_or_report(args.file, usable=True, user=args.user)
    if config is None:
        return EXIT_CONFIG
    for note in start_notes(config):
        print(f"{args.file}: note: {note}")
    print(f"{args.file}: ok ({config.device.kind} {config.device.site}/{config.device.id})")
    return 0
