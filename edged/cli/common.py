"""What several subcommands share: the --config option and loading it with clear errors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edged.config import ConfigError, DaemonConfig, load_config

EXIT_CONFIG = 2


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "-c",
        type=Path,
        default=None,
        help="TOML config file (default: the development default, simulated everything)",
    )


def load_or_report(
    path: Path | None, *, usable: bool = False, user: str | None = None
) -> DaemonConfig | None:
    """The config, or None after printing each problem on its own line to stderr.

    `usable` also checks files, certificates and keys as `user` would read them."""
    try:
        return load_config(path, usable=usable, user=user)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
