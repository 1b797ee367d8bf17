"""The receipt as a printable document: what the shopper takes home, in Chinese.

The document is width-independent blocks; the printer lays it out for its paper (58 mm: 32
columns, 80 mm: 48) through hal/printer/layout, so one stored print job prints on either.
Nothing here is wider than 32 columns unless the layout may clip it harmlessly.
"""

from __future__ import annotations

from dataclasses import dataclass

from edged.contract.envelope import parse_rfc3339
from edged.services.checkout import messages as M
from edged.services.checkout.money import yuan
from edged.services.payments.protocol import PaymentMethod
from edged.services.printing.queue import PrintJob, UnprintableJob
from edged.services.sales.records import Reader, Sale, SaleState, load_sale
from hal.printer.document import Columns, Feed, PrintDocument, QrCode, Rule, Text

NARROWEST_COLUMNS = 32
METHOD_LABELS = {
    PaymentMethod.WECHAT: "微信支付",
    PaymentMethod.ALIPAY: "支付宝",
    PaymentMethod.NATIVE_QR: "小程序支付",
}


@dataclass(frozen=True)
class ReceiptPayment:
    method: PaymentMethod
    trade_no: str
    amount_fen: int


def order_link(order_url: str, sale_id: str) -> str:
    """Where the mini-program shows this order; the receipt's QR carries it."""
    return f"{order_url}{sale_id}"


def receipt_document(
    shop_name: str, sale: Sale, payment: ReceiptPayment, order_url: str
) -> PrintDocument:
    blocks: list[Text | Columns | Rule | QrCode | Feed] = [
        Text(text=shop_name, align="center", bold=True, large=True),
    ]
    # The kiosk's local time zone: what the shopper's watch says.
    when = f"{parse_rfc3339(sale.completed_at or sale.created_at).astimezone():%Y-%m-%d %H:%M:%S}"
    unsynced = "" if sale.clock_synced else M.RECEIPT_CLOCK_UNSYNCED
    blocks += [
        Text(text=M.SALE_NO.format(no=sale.seq), align="center"),
        Text(text=M.RECEIPT_TIME.format(when=when) + unsynced, align="center"),
        Rule(),
    ]
    for line in sale.lines:
        blocks.append(Text(text=line.name))
        blocks.append(
            Columns(
                left=f"  {line.quantity} x {yuan(line.unit_price_fen)}", right=yuan(line.amount_fen)
            )
        )
    blocks += [
        Rule(),
        Columns(left="件数 Items", right=str(sale.items)),
        Text(text="", align="left"),
        Columns(left="合计 Total", right=yuan(sale.total_fen)),
        Columns(left="支付方式", right=METHOD_LABELS[payment.method]),
        Columns(left="实付 Paid", right=yuan(payment.amount_fen)),
        Text(text="交易号 Trade No."),
        *(Text(text=chunk) for chunk in _chunks(payment.trade_no, NARROWEST_COLUMNS)),
        Rule(),
        QrCode(data=order_link(order_url, sale.id), size=6),
        Text(text=M.RECEIPT_SCAN_ORDER, align="center"),
        Text(text=M.RECEIPT_THANKS, align="center"),
        Feed(lines=2),
    ]
    return PrintDocument(blocks=[b for b in blocks if not _blank(b)], cut=True)


class ReceiptRenderer:
    """Lays out a queued receipt from its committed sale and the trade that paid it.

    The print worker calls it when the job prints, so the sale's durable commit only queues
    the job; a receipt printed after a crash or a reprint shows the same committed facts.
    """

    def __init__(self, store: Reader, shop_name: str, order_url: str) -> None:
        self._store = store
        self._shop_name = shop_name
        self._order_url = order_url

    async def render(self, job: PrintJob) -> PrintDocument:
        sale = await load_sale(self._store, job.sale_id) if job.sale_id else None
        if sale is None or sale.state is not SaleState.PAID or sale.paid_trade_no is None:
            raise UnprintableJob(f"sale {job.sale_id} is not a paid sale")
        row = await self._store.fetchone(
            "SELECT method, amount_fen FROM payments WHERE trade_no = ?", (sale.paid_trade_no,)
        )
        if row is None:
            raise UnprintableJob(f"sale {sale.id}: its trade {sale.paid_trade_no} is not on record")
        payment = ReceiptPayment(
            PaymentMethod(row["method"]), sale.paid_trade_no, int(row["amount_fen"])
        )
        return receipt_document(self._shop_name, sale, payment, self._order_url)


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _blank(block: Text | Columns | Rule | QrCode | Feed) -> bool:
    return isinstance(block, Text) and not block.text
