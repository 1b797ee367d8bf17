"""`edged run`: the daemon itself."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from edged.cli.common import EXIT_CONFIG, add_config_option, load_or_report


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser("run", help="run the daemon")
    add_config_option(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from edged.app.daemon import Daemon
    from edged.runtime.logs import configure_logging

    configure_logging()
    config = load_or_report(args.config)
    if config is None:
        return EXIT_CONFIG
    return asyncio.run(Daemon(config).run())
