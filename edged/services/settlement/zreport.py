"""The Z-report as a table for the terminal and as a document for the receipt printer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from edged.services.checkout.money import yuan
from hal.printer.document import Columns, Feed, PrintDocument, Rule, Text

Z_REPORT = "z_report"
METHOD_NAMES = {"wechat": "微信支付 WeChat", "alipay": "支付宝 Alipay", "native_qr": "小程序 Mini"}


def z_report_rows(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(what, count, amount) rows, the same for the table and the paper."""
    rows = [("business day", body["business_day"], f"rev {body['revision']}")]
    for entry in body["by_method"]:
        rows.append(
            (
                METHOD_NAMES.get(entry["method"], entry["method"]),
                str(entry["count"]),
                yuan(entry["total_fen"]),
            )
        )
    rows.append(("sales", str(body["sales"]["count"]), yuan(body["sales"]["total_fen"])))
    for entry in body["refunds_by_method"]:
        name = METHOD_NAMES.get(entry["method"], entry["method"])
        rows.append((f"refunds {name}", str(entry["count"]), yuan(-entry["total_fen"])))
    rows.append(("refunds", str(body["refunds"]["count"]), yuan(-body["refunds"]["total_fen"])))
    rows.append(("net", "", yuan(body["net_fen"])))
    rows.append(("voided sales", str(body["voided"]["count"]), ""))
    first, last = body["first_txn_seq"], body["last_txn_seq"]
    rows.append(("transactions", str(body["txn_count"]), f"#{first}-#{last}" if first else "-"))
    return rows


def z_report_table(body: dict[str, Any]) -> str:
    rows = z_report_rows(body)
    width = max(len(r[0]) for r in rows)
    lines = [f"{what:<{width}}  {count:>6}  {amount:>14}" for what, count, amount in rows]
    lines.append(f"digest  {body['digest']}")
    return "\n".join(lines)


def z_report_document(shop_name: str, body: dict[str, Any], when: datetime) -> PrintDocument:
    blocks: list[Text | Columns | Rule | Feed] = [
        Text(text=shop_name, align="center", bold=True, large=True),
        Text(text="日结报表 Z-report", align="center", bold=True),
        Text(text=f"营业日 {body['business_day']}  rev {body['revision']}", align="center"),
        Text(text=f"打印 {when.astimezone():%Y-%m-%d %H:%M:%S}", align="center"),
        Rule(),
    ]
    for what, count, amount in z_report_rows(body)[1:]:
        blocks.append(Columns(left=f"{what} {count}".strip(), right=amount))
    blocks += [
        Rule(),
        Text(text="SHA-256"),
        Text(text=body["digest"][:32]),
        Text(text=body["digest"][32:]),
        Feed(lines=2),
    ]
    return PrintDocument(blocks=blocks, cut=True)
