"""Scan classification: is this text a product, a payment code, or nothing we know?

A payment code is a bearer token worth the shopper's money for about a minute, so the
`PaymentCode` value hides its digits from `repr` and `str`: it can be handed to payments but
cannot leak into a log line, a status reply or a display by accident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from edged.contract.pickup import is_pickup_token
from edged.services.payments.codes import classify_payment_code
from edged.services.payments.protocol import PaymentMethod

CODE128_TEXT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+-]{0,47}$")
"""Plain-text product codes (shelf labels, bag codes) as a Code 128 scanner hands them over."""
MAX_SCAN_CHARS = 256


class ProductSymbology(StrEnum):
    EAN13 = "ean13"
    EAN8 = "ean8"
    UPCA = "upca"
    CODE128 = "code128"


@dataclass(frozen=True)
class ProductCode:
    symbology: ProductSymbology
    key: str
    """The catalog key: UPC-A is widened to its GTIN-13 form (a leading zero)."""


@dataclass(frozen=True)
class PaymentCode:
    method: PaymentMethod
    code: str = field(repr=False)

    def __str__(self) -> str:
        return f"PaymentCode({self.method.value}, [redacted])"


@dataclass(frozen=True)
class ForeignCode:
    """A code another service reads (a mini-program pickup QR): checkout leaves it alone."""

    kind: str


@dataclass(frozen=True)
class UnknownCode:
    reason: str
    """Safe to show and log: it never repeats the scanned text."""


Classified = ProductCode | PaymentCode | ForeignCode | UnknownCode


def gtin_check_digit(body: str) -> int:
    """GS1 mod-10 check digit of the digits before it (EAN-13, EAN-8 and UPC-A alike)."""
    total = 0
    for position, char in enumerate(reversed(body)):
        total += int(char) * (3 if position % 2 == 0 else 1)
    return (10 - total % 10) % 10


def gtin_valid(digits: str) -> bool:
    return (
        len(digits) >= 2
        and digits.isascii()
        and digits.isdigit()
        and gtin_check_digit(digits[:-1]) == int(digits[-1])
    )


def classify(text: str) -> Classified:
    """Decide what a scan is; never raises, whatever the scanner sent."""
    code = text.strip()
    if not code:
        return UnknownCode("empty scan")
    if is_pickup_token(code):
        return ForeignCode("pickup")
    if len(code) > MAX_SCAN_CHARS:
        return UnknownCode("code too long")
    if code.isascii() and code.isdigit():
        return _classify_digits(code)
    if CODE128_TEXT.match(code):
        return ProductCode(ProductSymbology.CODE128, code)
    return UnknownCode("not a product or payment code")


def _classify_digits(code: str) -> Classified:
    method = classify_payment_code(code)
    if method is not None:
        return PaymentCode(method, code)
    length = len(code)
    if length >= 16:
        return UnknownCode("unsupported payment code")
    symbology = {13: ProductSymbology.EAN13, 8: ProductSymbology.EAN8, 12: ProductSymbology.UPCA}
    if length in symbology:
        if not gtin_valid(code):
            return UnknownCode("barcode check digit is wrong")
        kind = symbology[length]
        return ProductCode(kind, "0" + code if kind is ProductSymbology.UPCA else code)
    return ProductCode(ProductSymbology.CODE128, code)
