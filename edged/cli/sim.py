"""`edged sim scan CODE` / `edged sim camera CODE`: feed a running daemon's simulated devices.

The code takes the real path through the daemon (reader task, scan dispatch, checkout), so a
person or a test drives the actual process; the reply is the checkout state afterwards.
"""

from __future__ import annotations

import argparse
from typing import Any

from edged.cli.common import add_config_option
from edged.cli.control import send


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "sim", help="feed the simulated scanner, camera or printer of a running daemon"
    )
    devices = parser.add_subparsers(dest="device", required=True, metavar="DEVICE")
    for device, help_text in (
        ("scan", "the simulated scanner reads CODE (a barcode or a payment code)"),
        ("camera", "the simulated camera decodes CODE (e.g. a payment code)"),
    ):
        sub = devices.add_parser(device, help=help_text)
        sub.add_argument(
            "code", metavar="CODE", help="the text the code carries, e.g. 6901028075831"
        )
        add_config_option(sub)
        sub.set_defaults(handler=handle_sim, control_command=f"sim.{device}")
    paper = devices.add_parser("paper", help="the simulated printer runs out of paper, or not")
    paper.add_argument("state", choices=["out", "in"], help="paper out, or paper loaded again")
    add_config_option(paper)
    paper.set_defaults(handler=lambda args: send(args, "sim.paper", {"state": args.state}))
    door = devices.add_parser("door", help="open or close the simulated door of a vending counter")
    door.add_argument("state", choices=("open", "closed"), help="what the door switch reports")
    door.add_argument("--slot", type=int, default=1, help="the slot's door (default: 1)")
    add_config_option(door)
    door.set_defaults(handler=handle_door)


def handle_door(args: argparse.Namespace) -> int:
    return send(args, "sim.door", {"slot": args.slot, "state": args.state})


def handle_sim(args: argparse.Namespace) -> int:
    return send(args, args.control_command, {"code": args.code})
