"""`edged refund SALE_ID ...`: the technician refunds a paid sale at the kiosk (token needed)."""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any

from edged.cli.common import EXIT_CONFIG, add_config_option, load_or_report
from edged.cli.control import send

TOKEN_VARIABLE = "EDGED_SECURITY__TECHNICIAN_TOKEN"
"""The config's own override for `[security] technician_token`."""
REASONS = ("returned", "damaged", "price_adjustment", "goods_not_released", "other")


def register(commands: Any) -> None:
    refund: argparse.ArgumentParser = commands.add_parser(
        "refund", help="refund a paid sale in full, by lines or by an amount (technician)"
    )
    refund.add_argument("sale_id", metavar="SALE_ID", help="the paid sale to refund")
    what = refund.add_mutually_exclusive_group(required=True)
    what.add_argument("--full", action="store_true", help="everything not yet refunded")
    what.add_argument("--amount", type=int, metavar="FEN", help="this many fen")
    what.add_argument(
        "--line", action="append", metavar="LINE:QTY", help="QTY of line LINE (repeatable)"
    )
    refund.add_argument("--reason", choices=REASONS, default="other", help="why (default: other)")
    refund.add_argument(
        "--request-id", default=None, help="repeat a request without refunding twice"
    )
    refund.add_argument("--token", default=None, help=f"technician token (or ${TOKEN_VARIABLE})")
    add_config_option(refund)
    refund.set_defaults(handler=_refund)


def _refund(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return EXIT_CONFIG
    configured = config.security.technician_token
    token = args.token or (configured.get_secret_value() if configured else None)
    if not token:
        print(
            f"edged: the technician token is needed (--token or ${TOKEN_VARIABLE})", file=sys.stderr
        )
        return 2
    payload: dict[str, Any] = {
        "token": token,
        "sale_id": args.sale_id,
        "reason": args.reason,
        "request_id": args.request_id or f"tech-{uuid.uuid4().hex[:24]}",
    }
    if args.full:
        payload["kind"] = "full"
    elif args.amount is not None:
        payload |= {"kind": "amount", "amount_fen": args.amount}
    else:
        try:
            lines = [tuple(int(part) for part in item.split(":")) for item in args.line]
            payload |= {"kind": "lines", "lines": [{"line_no": n, "quantity": q} for n, q in lines]}
        except ValueError:
            print("edged: --line takes LINE:QTY, e.g. --line 2:1", file=sys.stderr)
            return 2
    return send(args, "refund.start", payload)
