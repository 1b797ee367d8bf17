"""`edged cart ...` and `edged reprint`: what the shopper's touch screen (or staff) asks for."""

from __future__ import annotations

import argparse
from typing import Any

from edged.cli.common import add_config_option
from edged.cli.control import send


def register(commands: Any) -> None:
    cart: argparse.ArgumentParser = commands.add_parser(
        "cart", help="change the basket of a running daemon, or pay in the mini-program"
    )
    actions = cart.add_subparsers(dest="action", required=True, metavar="ACTION")
    void = actions.add_parser("void", help="remove line LINE from the basket")
    void.add_argument("line", type=int, metavar="LINE", help="line number, as the display shows it")
    qty = actions.add_parser("qty", help="set the quantity of line LINE")
    qty.add_argument("line", type=int, metavar="LINE", help="line number, as the display shows it")
    qty.add_argument("quantity", type=int, metavar="QUANTITY", help="the new quantity")
    cancel = actions.add_parser(
        "cancel",
        help="cancel the basket, or the payment in progress (reversed, or withdrawn if it "
        "never left); asked again while that is unconfirmed, the payment is parked in doubt "
        "and the kiosk is free",
    )
    pay_qr = actions.add_parser("pay-qr", help="pay in the mini-program: show the order QR")
    for sub, handler in ((void, _void), (qty, _qty), (cancel, _cancel), (pay_qr, _pay_qr)):
        add_config_option(sub)
        sub.set_defaults(handler=handler)

    reprint: argparse.ArgumentParser = commands.add_parser(
        "reprint", help="print a marked copy of a receipt (default: the newest)"
    )
    reprint.add_argument(
        "sale_id",
        nargs="?",
        default=None,
        metavar="SALE_ID",
        help="the sale whose receipt to reprint (default: the newest)",
    )
    add_config_option(reprint)
    reprint.set_defaults(handler=_reprint)


def _void(args: argparse.Namespace) -> int:
    return send(args, "cart.void", {"line": args.line})


def _qty(args: argparse.Namespace) -> int:
    return send(args, "cart.qty", {"line": args.line, "quantity": args.quantity})


def _cancel(args: argparse.Namespace) -> int:
    return send(args, "cart.cancel")


def _pay_qr(args: argparse.Namespace) -> int:
    return send(args, "checkout.pay_qr")


def _reprint(args: argparse.Namespace) -> int:
    return send(args, "reprint", {"sale_id": args.sale_id} if args.sale_id else {})
