"""The `edged` command: each subcommand lives in its own module with a `register` function."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edged import __version__
from edged.cli import (
    bench,
    cart,
    check_config,
    cloudsim,
    config_show,
    control,
    demo,
    doctor,
    extras,
    fleet,
    identity,
    order,
    payments,
    refund,
    report,
    run,
    sim,
)

DESCRIPTION = (
    "edged, the gateway daemon of a self-checkout kiosk or an unattended vending counter. "
    "Try it with `edged demo`; check a config with `edged check-config FILE`; on a board the "
    "systemd unit runs `edged run --config /etc/edged/edged.toml`, and `edged doctor` and "
    "`edged status` tell how it is."
)
SUBCOMMANDS = [
    demo, run, check_config, config_show, control, sim, cart, order, payments, refund, report,
    identity, doctor, extras, bench, cloudsim, fleet,
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edged", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"edged {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
