"""`edged payments in-doubt`: the technician's view of parked trades and late successes."""

from __future__ import annotations

import argparse
from typing import Any

from edged.cli.common import add_config_option
from edged.cli.control import send


def register(commands: Any) -> None:
    payments: argparse.ArgumentParser = commands.add_parser(
        "payments", help="payments of a running daemon that need a person"
    )
    actions = payments.add_subparsers(dest="action", required=True, metavar="ACTION")
    in_doubt = actions.add_parser(
        "in-doubt",
        help="parked trades (cancel never confirmed; resolved in the background) and "
        "late successes whose money must be refunded",
    )
    add_config_option(in_doubt)
    in_doubt.set_defaults(handler=_in_doubt)


def _in_doubt(args: argparse.Namespace) -> int:
    return send(args, "payments.in_doubt")
