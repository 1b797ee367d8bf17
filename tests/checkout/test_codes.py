"""Scan classification: what the kiosk makes of whatever a scanner or camera sends."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edged.services.checkout.codes import (
    PaymentCode,
    ProductCode,
    ProductSymbology,
    UnknownCode,
    classify,
    gtin_check_digit,
)
from edged.services.payments.protocol import PaymentMethod

REASONS = {
    "empty scan",
    "code too long",
    "not a product or payment code",
    "unsupported payment code",
    "barcode check digit is wrong",
}
digits = st.text(alphabet="0123456789", min_size=1, max_size=30)


def with_check(body: str) -> str:
    return body + str(gtin_check_digit(body))


def test_known_product_codes() -> None:
    assert classify("6901028075831") == ProductCode(ProductSymbology.EAN13, "6901028075831")
    assert classify("69012341") == ProductCode(ProductSymbology.EAN8, "69012341")
    # UPC-A is looked up as its GTIN-13 (leading zero): one catalog key for both symbologies.
    assert classify("036000291452") == ProductCode(ProductSymbology.UPCA, "0036000291452")
    assert classify(" BAG-01\n") == ProductCode(ProductSymbology.CODE128, "BAG-01")


def test_wrong_check_digit_is_unknown_not_a_product() -> None:
    assert classify("6901028075832") == UnknownCode("barcode check digit is wrong")
    assert classify("69012342") == UnknownCode("barcode check digit is wrong")
    assert classify("036000291453") == UnknownCode("barcode check digit is wrong")


def test_payment_codes() -> None:
    assert classify("134567890123456789") == PaymentCode(PaymentMethod.WECHAT, "134567890123456789")
    assert classify("2865432109876543") == PaymentCode(PaymentMethod.ALIPAY, "2865432109876543")
    assert isinstance(classify("16" + "0" * 16), UnknownCode)  # 18 digits, prefix 16: neither
    assert isinstance(classify("25" + "0" * 23), UnknownCode)  # 25 digits: too long for Alipay


def test_garbage_is_unknown() -> None:
    for text in ("", "   ", "hello world", "价格", "x" * 300, "\x00\x01"):
        assert isinstance(classify(text), UnknownCode)


def test_payment_code_cannot_leak_through_repr_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    code = classify("134567890123456789")
    assert "134567890123456789" not in repr(code)
    assert "134567890123456789" not in str(code)
    logging.getLogger("test").warning("scanned %s / %r", code, code)
    assert "134567890123456789" not in caplog.text
    assert "[redacted]" in caplog.text


@given(st.text(max_size=300))
def test_classify_never_raises(text: str) -> None:
    result = classify(text)
    assert isinstance(result, ProductCode | PaymentCode | UnknownCode)
    if isinstance(result, UnknownCode):  # a fixed sentence, never an echo of the scan
        assert result.reason in REASONS


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_any_valid_ean13_is_a_product_and_any_other_check_digit_is_not(body: str) -> None:
    code = with_check(body)
    assert classify(code) == ProductCode(ProductSymbology.EAN13, code)
    for wrong in "0123456789":
        if wrong != code[-1]:
            assert isinstance(classify(body + wrong), UnknownCode)


@given(st.text(alphabet="0123456789", min_size=7, max_size=7))
def test_any_valid_ean8_is_a_product(body: str) -> None:
    assert classify(with_check(body)) == ProductCode(ProductSymbology.EAN8, with_check(body))


@given(st.integers(10, 15), st.text(alphabet="0123456789", min_size=16, max_size=16))
def test_any_wechat_code(prefix: int, rest: str) -> None:
    code = f"{prefix}{rest}"
    assert classify(code) == PaymentCode(PaymentMethod.WECHAT, code)


@given(st.integers(25, 30), st.integers(14, 22), st.data())
def test_any_alipay_code(prefix: int, rest_len: int, data: st.DataObject) -> None:
    rest = data.draw(st.text(alphabet="0123456789", min_size=rest_len, max_size=rest_len))
    code = f"{prefix}{rest}"
    assert classify(code) == PaymentCode(PaymentMethod.ALIPAY, code)


@given(digits)
def test_digit_strings_of_payment_length_are_never_products(text: str) -> None:
    """A long digit string is money or nothing: it must never reach the catalog as a key."""
    if len(text) >= 16:
        assert not isinstance(classify(text), ProductCode)
