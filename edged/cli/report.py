"""`edged report day [--date D]` and `edged report sales --from D --to D --format csv`."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from edged.cli.common import EXIT_CONFIG, add_config_option, load_or_report
from edged.cli.control import EXIT_UNAVAILABLE
from edged.control.client import ControlUnavailable, call


def register(commands: Any) -> None:
    report: argparse.ArgumentParser = commands.add_parser(
        "report", help="the daily settlement (Z-report) and the sales export"
    )
    kinds = report.add_subparsers(dest="kind", required=True, metavar="KIND")
    day = kinds.add_parser(
        "day", help="commit and publish the business day's settlement; print it (and on paper)"
    )
    day.add_argument("--date", default=None, help="business day YYYY-MM-DD (default: today's)")
    day.add_argument("--no-print", action="store_true", help="not on the receipt printer")
    day.add_argument("--json", action="store_true", help="the signed report body as JSON")
    sales = kinds.add_parser("sales", help="sales with lines, payments and refunds")
    sales.add_argument("--from", dest="first", required=True, help="first business day")
    sales.add_argument("--to", dest="last", required=True, help="last business day")
    sales.add_argument(
        "--format", choices=("csv", "json"), default="csv", help="output format (default: csv)"
    )
    for sub, handler in ((day, _day), (sales, _sales)):
        add_config_option(sub)
        sub.set_defaults(handler=handler)


def _call(args: argparse.Namespace, command: str, payload: dict[str, Any]) -> Any:
    config = load_or_report(args.config)
    if config is None:
        raise SystemExit(EXIT_CONFIG)
    try:
        return call(config.paths.socket_path(), command, payload)
    except ControlUnavailable as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(EXIT_UNAVAILABLE) from None
    except RuntimeError as exc:
        print(f"edged: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def _day(args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {"print": not args.no_print}
    if args.date:
        payload["date"] = args.date
    result = _call(args, "report.day", payload)
    if args.json:
        print(json.dumps(result["report"], indent=2, ensure_ascii=False))
    else:
        print(result["table"])
    return 0


def _sales(args: argparse.Namespace) -> int:
    result = _call(args, "report.sales", {"from": args.first, "to": args.last})
    if args.format == "json":
        print(json.dumps(result["rows"], indent=2, ensure_ascii=False))
        return 0
    writer = csv.DictWriter(sys.stdout, fieldnames=result["columns"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(result["rows"])
    return 0
