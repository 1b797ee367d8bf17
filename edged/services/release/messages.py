# ruff: noqa: RUF001
"""What the shopper reads while goods are handed over: Chinese first, an English hint after."""

from __future__ import annotations

DOOR_OPEN = "柜门已开，请取走商品 Door open, take your items"
SLOT_OPEN = "{slot}号格口已开，请取走商品 Slot {slot} open, take your items"
CLOSE_DOOR = "请关好柜门 Please close the door"
DOOR_LEFT_OPEN = "柜门未关，请关好柜门 Door left open: please close the door"
THANK_YOU = "谢谢惠顾 Thank you"
NOT_OPENED = "柜门未打开，款项将原路退回 Door not opened: your payment will be refunded"
NOT_RELEASED = "无法开门，款项将原路退回 Door could not open: your payment will be refunded"
COULD_NOT_OPEN = "无法开门 Door could not open"
ASK_STAFF = "请联系店员 Please ask staff for help"
