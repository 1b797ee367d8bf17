# ruff: noqa: RUF001
"""What the shopper reads when collecting an online order: Chinese first, English after."""

from __future__ import annotations

COLLECTED_SLOT = "取货成功，{slot}号格口已开 Order collected: take it from slot {slot}"
COLLECTED_COUNTER = "取货成功，请凭取货单到柜台取货 Order collected: show the slip at the counter"
ALREADY_COLLECTED = "该订单已于 {when} 在 {where} 取货 Already collected at {when} at {where}"
NOT_READY = "订单正在备货，请稍候 Your order is not ready yet"
UNKNOWN_ORDER = "未找到该订单 Order not known at this kiosk"
ORDER_CLOSED = "该订单已{state} This order is {state}"
FORGED = "取货码无效 This pickup code is not valid"
EXPIRED = "取货码已过期 This pickup code has expired"
OTHER_DEVICE = "此订单不在本机取货 This order is collected at another kiosk"
WRONG_CODE = "取货码错误，还可尝试{left}次 Wrong code: {left} tries left"
LOCKED = "错误次数过多，请于 {until} 后再试 Too many wrong codes: try again after {until}"
CODE_FORMAT = "请输入6位取货码 Enter the 6-digit pickup code"

TICKET_TITLE = "拣货单 Pick ticket"
SLIP_TITLE = "取货单 Collection slip"
ORDER_NO = "订单 {order_id}"
PICKUP_CODE = "取货码 {code}"
SLOT = "{slot}号格口 Slot {slot}"
COUNTER = "柜台取货 Counter pickup"
PAID_ONLINE = "已在线支付 {amount}"
COLLECTED_AT = "取货时间 {when}"
