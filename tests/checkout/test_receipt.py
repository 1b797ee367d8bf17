"""The receipt the shopper takes home: Chinese text in GB18030 and a QR back to the order."""

from __future__ import annotations

import re

import pytest
import qrcode
import zxingcpp

from edged.services.checkout.receipt import ReceiptRenderer
from edged.services.payments.protocol import PaymentOutcome
from edged.services.printing.queue import PrintJob, UnprintableJob
from hal.printer.layout import COLUMNS_BY_PAPER_MM, text_width
from hal.printer.render import render_text
from tests.checkout.conftest import COLA, GUM, WATER, WECHAT_CODE, Kiosk, KioskFactory, eventually

STORE_QR = re.compile(rb"\x1d\(k(.)(.)1P0", re.DOTALL)
"""ESC/POS GS ( k <pL> <pH> 49 80 48 <data>: store the QR symbol's data."""


async def paid_sale(kiosk: Kiosk) -> tuple[str, str]:
    for code in (WATER, WATER, COLA, GUM):
        await kiosk.scan(code)
    assert kiosk.checkout.sale is not None
    sale_id = kiosk.checkout.sale.id
    await kiosk.scan(WECHAT_CODE)
    trade_no = kiosk.payments.trade_for(sale_id)
    await kiosk.payments.finish(trade_no, PaymentOutcome.PAID)
    return sale_id, trade_no


def qr_data_in(escpos: bytes) -> str:
    match = STORE_QR.search(escpos)
    assert match is not None, "no QR code in the printed bytes"
    length = match.group(1)[0] + 256 * match.group(2)[0] - 3
    return escpos[match.end() : match.end() + length].decode("ascii")


@pytest.mark.parametrize("paper_mm", [58, 80])
async def test_printed_receipt_reads_back(make_kiosk: KioskFactory, paper_mm: int) -> None:
    kiosk = await make_kiosk(paper_mm=paper_mm)
    sale_id, trade_no = await paid_sale(kiosk)
    await eventually(lambda: _printed(kiosk, 1))

    escpos = (kiosk.path / "printer" / "receipt-000001.bin").read_bytes()
    for text in (
        "便利店 Test Shop",
        "农夫山泉 饮用天然水 550ml",
        "可口可乐 330ml",
        "绿箭 口香糖 5片",
        "¥10.00",
        "微信支付",
        "谢谢惠顾，欢迎再次光临",  # noqa: RUF001
        trade_no,
    ):
        assert text.encode("gb18030") in escpos, text
    decoded = escpos.decode("gb18030", errors="replace")
    assert "合计 Total" in decoded and "销售单号 No. 000001" in decoded

    # The QR the printer was told to print carries the order's mini-program link, and a
    # QR with that data decodes back to it.
    url = f"https://mp.example.com/o/{sale_id}"
    assert qr_data_in(escpos) == url
    image = qrcode.make(url).get_image().convert("L")
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [url]

    text = (kiosk.path / "printer" / "receipt-000001.txt").read_text("utf-8")
    width = COLUMNS_BY_PAPER_MM[paper_mm]
    for line in text.splitlines():
        if not line.endswith("(cut)") and not line.startswith("[QR "):  # markers, not paper
            assert text_width(line) <= width, line
    assert "  2 x ¥2.00" in text and "¥4.00" in text


async def test_one_document_lays_out_on_both_papers(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk(printing=False)
    sale_id, _ = await paid_sale(kiosk)
    row = await kiosk.store.fetchone("SELECT id, kind, document FROM print_jobs")
    assert row is not None and row["document"] is None, "laid out when it prints"
    job = PrintJob(row["id"], sale_id, row["kind"], None)
    document = await ReceiptRenderer(kiosk.store, "Shop", "https://mp.example.com/o/").render(job)
    for width in COLUMNS_BY_PAPER_MM.values():
        lines = render_text(document, width).splitlines()
        trade_lines = [line for line in lines if re.fullmatch(r"[0-9a-f]{32}", line.strip())]
        assert trade_lines, "the trade number is printed whole on its own line"
        printed = [line for line in lines if "(cut)" not in line and not line.startswith("[QR ")]
        assert all(text_width(line) <= width for line in printed)


async def _printed(kiosk: Kiosk, count: int) -> bool:
    return kiosk.printer.printed >= count


async def test_a_receipt_for_a_sale_that_was_never_paid_cannot_be_laid_out(
    make_kiosk: KioskFactory,
) -> None:
    kiosk = await make_kiosk(printing=False)
    await kiosk.scan(WATER)
    assert kiosk.checkout.sale is not None
    renderer = ReceiptRenderer(kiosk.store, "Shop", "https://mp.example.com/o/")
    for sale_id in (kiosk.checkout.sale.id, "no-such-sale"):
        with pytest.raises(UnprintableJob, match="is not a paid sale"):
            await renderer.render(PrintJob(1, sale_id, "receipt", None))
