"""`report.day` and `report.sales` on the control socket (`edged report ...`)."""

from __future__ import annotations

from datetime import date
from typing import Any

from edged.control.server import CommandError
from edged.services.settlement.exports import COLUMNS, sales_rows
from edged.services.settlement.service import SettlementService
from edged.services.settlement.zreport import z_report_table
from edged.store import Store


class ReportCommands:
    def __init__(self, settlement: SettlementService, store: Store) -> None:
        self._settlement = settlement
        self._store = store

    async def day(self, args: dict[str, Any]) -> dict[str, Any]:
        day = _date(args, "date") if args.get("date") is not None else None
        print_it = args.get("print", True)
        if not isinstance(print_it, bool):
            raise CommandError("print must be true or false")
        body = await self._settlement.report_day(day, print_it=print_it)
        return {"report": body, "table": z_report_table(body)}

    async def sales(self, args: dict[str, Any]) -> dict[str, Any]:
        first, last = _date(args, "from"), _date(args, "to")
        if last < first:
            raise CommandError("to is before from")
        if (last - first).days > 366:
            raise CommandError("at most a year at a time")
        rows = await sales_rows(
            self._store, first, last, self._settlement.zone, self._settlement.cutover
        )
        return {"columns": list(COLUMNS), "rows": rows}


def _date(args: dict[str, Any], key: str) -> date:
    value = args.get(key)
    try:
        if not isinstance(value, str):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{key} must be a date like 2026-12-01") from None
