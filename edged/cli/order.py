"""`edged order code 123456` / `edged order ready ORDER_ID`: a running daemon's order pickup.

`code` is what the kiosk screen sends when a shopper types the 6-digit pickup code; `ready`
is staff saying an order has been prepared. The reply says what the shopper reads.
"""

from __future__ import annotations

import argparse
from typing import Any

from edged.cli.common import add_config_option
from edged.cli.control import send


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "order", help="collect a mini-program order by its code, or mark one prepared"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    code = actions.add_parser("code", help="the shopper types the 6-digit pickup code")
    code.add_argument("code", metavar="CODE", help="the pickup code the shopper shows")
    add_config_option(code)
    code.set_defaults(handler=lambda a: send(a, "order.code", {"code": a.code}))
    ready = actions.add_parser("ready", help="staff have prepared ORDER_ID")
    ready.add_argument("order_id", metavar="ORDER_ID", help="the mini-program order id")
    add_config_option(ready)
    ready.set_defaults(handler=lambda a: send(a, "order.ready", {"order_id": a.order_id}))
