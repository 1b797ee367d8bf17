"""Which network a payment code belongs to, from its digit prefix and length.

WeChat Pay codes are 18 digits starting 10-15; Alipay codes are 16-24 digits starting 25-30.
Both the kiosk (before sealing) and the simulated backend (after opening) check this.
"""

from __future__ import annotations

from edged.services.payments.protocol import PaymentMethod


def classify_payment_code(text: str) -> PaymentMethod | None:
    if not text.isascii() or not text.isdigit():
        return None
    prefix = int(text[:2])  # a one-digit text has no payment-code length either
    if len(text) == 18 and 10 <= prefix <= 15:
        return PaymentMethod.WECHAT
    if 16 <= len(text) <= 24 and 25 <= prefix <= 30:
        return PaymentMethod.ALIPAY
    return None
