"""`edged run`: the daemon itself."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

from edged.cli.common import EXIT_CONFIG, add_config_option

log = logging.getLogger("edged.config")


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "run",
        help="run the daemon (what the systemd unit starts)",
        description=(
            "Run the daemon in the foreground. The config is checked first, files and keys "
            "included; a config that cannot work exits 2 before the daemon says READY. With "
            "no --config it runs the development default: simulated devices, a local broker "
            "and a simulated cloud, data in ./var."
        ),
    )
    add_config_option(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from edged.app.daemon import EXIT_RELOAD, EXIT_RESTART, Daemon
    from edged.config import ConfigError, load_config_and_raw
    from edged.config.usable import start_notes
    from edged.runtime.logs import configure_logging

    configure_logging()
    while True:
        try:
            config, raw = load_config_and_raw(args.config, usable=True)
        except ConfigError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            return EXIT_CONFIG
        for note in start_notes(config):
            log.warning("config note", extra={"note": note})
        code = asyncio.run(Daemon(config, file_raw=raw).run())
        if code == EXIT_RESTART:
            sys.stdout.flush()
            sys.stderr.flush()
            os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
        if code != EXIT_RELOAD:
            return code
