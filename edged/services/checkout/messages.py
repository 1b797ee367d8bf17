# ruff: noqa: RUF001, RUF002
"""Every sentence the shopper reads, in one place: Chinese first, an English hint after.

Chinese text uses full-width punctuation (，), which is correct there; hence the file-wide
exemption from ruff's ambiguous-character rule, kept to this one module.
"""

from __future__ import annotations

WELCOME = "欢迎光临 {shop}"
SCAN_AN_ITEM = "请扫描商品条码 Please scan an item"
BASKET_EMPTY = "购物车为空 Basket empty"
PAYMENT_IN_PROGRESS = "正在支付，请稍候 Payment in progress"
PRODUCT_NOT_FOUND = "商品未找到，请联系店员 Product not found"
UNKNOWN_CODE = "无法识别的条码 Unknown code ({reason})"
SCAN_ITEMS_FIRST = "请先扫描商品 Scan your items first"
PREVIOUS_PAYMENT_PENDING = "上一笔支付处理中，请稍候 Previous payment pending"
PAYMENT_NOT_STARTED = "无法发起支付，请重试 Payment could not start"
PAYMENT_NOT_COMPLETED = "支付未完成 Payment not completed"
PAYMENT_ENDED = "支付未完成 Payment not completed: {reason}"
DECLINED = "支付失败 declined"
CANCELLED_REASON = "已取消 cancelled"
SALES_STOPPED = "暂停销售，请联系店员 Sales stopped: store full"
SALES_STOPPED_ASK_STAFF = "暂停销售，请联系店员 Sales stopped, please ask staff"
PAYMENT_IN_DOUBT = (
    "支付未确认，商品未放行；如已扣款将自动退回 Payment not confirmed: no goods released. "
    "If you were charged, it is refunded automatically; staff can help"
)
SALE_LIMIT = "超过单笔限额 Sale limit reached"
SALE_CANCELLED = "已取消 Sale cancelled"
CANCELLING = "正在取消 Cancelling…"
BASKET_TIMED_OUT = "购物车已超时清空 Basket cleared after inactivity"
REMOVED = "已删除 Removed: {name}"
RECEIPT_WAITING = "小票暂未打印，请联系店员 Receipt waiting: {problem}"
PAYING = "正在支付 Paying…"
PAYING_WITH = "正在支付 {method} Paying…"
PLEASE_WAIT = "请稍候 Please wait"
AMOUNT_DUE = "应付 {amount}"
TOTAL = "合计 {amount}"
SCAN_TO_PAY = "请用小程序扫码支付 Scan to pay"
VALID_UNTIL = "有效期至 {time} Valid until"
THANK_YOU = "支付成功 谢谢惠顾 Thank you"
SALE_NO = "销售单号 No. {no:06d}"
TAKE_RECEIPT = "请取走小票 Please take your receipt"
AMOUNT_PAID = "已付 {amount}"

RECEIPT_THANKS = "谢谢惠顾，欢迎再次光临"
RECEIPT_SCAN_ORDER = "扫码查看订单 Scan for your order"
RECEIPT_TIME = "时间 {when}"
RECEIPT_CLOCK_UNSYNCED = " (未校时)"
