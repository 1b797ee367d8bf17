"""`edged report day` and `edged report sales` as the merchant types them."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

from tests.e2e.kiosk import ITEMS, Kiosk
from tests.refunds.test_refunds_e2e import refund_op, wait_refund_state
from tests.settlement.test_zreport_e2e import sell


def edged(kiosk: Kiosk, *args: str) -> str:
    command = [sys.executable, "-m", "edged", *args, "--config", str(kiosk.daemon.config_file)]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def test_the_z_report_prints_as_a_table_and_on_paper_and_sales_export_as_csv(
    kiosk: Kiosk,
) -> None:
    first = sell(kiosk, ITEMS)  # 1000 fen
    sell(kiosk, ITEMS[:1])  # 200 fen
    refund_op(kiosk, {"request_id": "cli-refund-1", "sale_id": first, "kind": "amount",
                      "amount_fen": 300})  # fmt: skip
    wait_refund_state(kiosk, first, 1, "succeeded")
    day = kiosk.status()["settlement"]["today"]

    table = edged(kiosk, "report", "day", "--date", day).splitlines()
    assert table[0].split() == ["business", "day", day, "rev", "1"]
    assert [line.split() for line in table[1:-1]] == [
        ["微信支付", "WeChat", "2", "¥12.00"],
        ["sales", "2", "¥12.00"],
        ["refunds", "微信支付", "WeChat", "1", "-¥3.00"],
        ["refunds", "1", "-¥3.00"],
        ["net", "¥9.00"],
        ["voided", "sales", "0"],
        ["transactions", "3", "#1-#3"],
    ]
    kiosk.wait(
        "the Z-report on paper",
        lambda _s: any("日结报表 Z-report" in r for r in kiosk.receipts()),
    )

    rows = list(csv.DictReader(io.StringIO(edged(kiosk, "report", "sales", "--from", day,
                                                 "--to", day, "--format", "csv"))))  # fmt: skip
    assert [(r["record"], r["sale_no"], r["amount_fen"]) for r in rows] == [
        ("sale", "1", "1000"),
        ("line", "1", "200"),
        ("line", "1", "350"),
        ("line", "1", "450"),
        ("payment", "1", "1000"),
        ("refund", "1", "-300"),
        ("sale", "2", "200"),
        ("line", "2", "200"),
        ("payment", "2", "200"),
    ]
    assert rows[5]["refund_no"].endswith("R01") and rows[4]["method"] == "wechat"
