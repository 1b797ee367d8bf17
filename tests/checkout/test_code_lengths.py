"""Digit codes of every length from 1 to 30: what the kiosk makes of each, by explicit example
and by a strategy that draws only ASCII digit strings of exactly that length."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edged.services.checkout.codes import (
    Classified,
    PaymentCode,
    ProductCode,
    ProductSymbology,
    UnknownCode,
    classify,
    gtin_check_digit,
    gtin_valid,
)
from edged.services.payments.codes import classify_payment_code
from edged.services.payments.protocol import PaymentMethod

P = ProductSymbology


def expected(code: str) -> Classified:
    """The rule, written out: more than 256 characters is never read, GS1 lengths need their
    check digit, WeChat Pay is 18 digits starting 10-15, Alipay 16-24 digits starting 25-30,
    any other 16+ digits is nobody's payment code, and every other length is a plain product
    code (shop codes, GTIN-14)."""
    n, prefix = len(code), int(code[:2]) if len(code) >= 2 else -1
    if n > 256:
        return UnknownCode("code too long")
    if n == 18 and 10 <= prefix <= 15:
        return PaymentCode(PaymentMethod.WECHAT, code)
    if 16 <= n <= 24 and 25 <= prefix <= 30:
        return PaymentCode(PaymentMethod.ALIPAY, code)
    if n >= 16:
        return UnknownCode("unsupported payment code")
    gs1 = {8: P.EAN8, 12: P.UPCA, 13: P.EAN13}
    if n in gs1:
        if gtin_check_digit(code[:-1]) != int(code[-1]):
            return UnknownCode("barcode check digit is wrong")
        return ProductCode(gs1[n], "0" + code if n == 12 else code)
    return ProductCode(P.CODE128, code)


EXAMPLES = [
    ("7", ProductCode(P.CODE128, "7")),
    ("42", ProductCode(P.CODE128, "42")),
    ("123456", ProductCode(P.CODE128, "123456")),  # a 6-digit shop code
    ("1234567", ProductCode(P.CODE128, "1234567")),
    ("69012341", ProductCode(P.EAN8, "69012341")),
    ("69012342", UnknownCode("barcode check digit is wrong")),
    ("123456789", ProductCode(P.CODE128, "123456789")),
    ("1234567890", ProductCode(P.CODE128, "1234567890")),
    ("12345678901", ProductCode(P.CODE128, "12345678901")),
    ("036000291452", ProductCode(P.UPCA, "0036000291452")),
    ("036000291453", UnknownCode("barcode check digit is wrong")),
    ("6901028075831", ProductCode(P.EAN13, "6901028075831")),
    ("6901028075832", UnknownCode("barcode check digit is wrong")),
    ("16901028075838", ProductCode(P.CODE128, "16901028075838")),  # GTIN-14 (a case of 12)
    ("123456789012345", ProductCode(P.CODE128, "123456789012345")),
    ("2500000000000000", PaymentCode(PaymentMethod.ALIPAY, "2500000000000000")),  # 16, lowest
    ("3099999999999999", PaymentCode(PaymentMethod.ALIPAY, "3099999999999999")),
    ("2400000000000000", UnknownCode("unsupported payment code")),  # 16 digits, prefix 24
    ("3100000000000000", UnknownCode("unsupported payment code")),  # 16 digits, prefix 31
    ("1000000000000000", UnknownCode("unsupported payment code")),  # WeChat prefix, 16 digits
    ("28" + "0" * 15, PaymentCode(PaymentMethod.ALIPAY, "28" + "0" * 15)),  # 17
    ("100000000000000000", PaymentCode(PaymentMethod.WECHAT, "100000000000000000")),  # 18, 10
    ("159999999999999999", PaymentCode(PaymentMethod.WECHAT, "159999999999999999")),  # 18, 15
    ("090000000000000000", UnknownCode("unsupported payment code")),  # 18, prefix 09
    ("160000000000000000", UnknownCode("unsupported payment code")),  # 18, prefix 16
    ("10" + "0" * 15, UnknownCode("unsupported payment code")),  # 17 digits, WeChat prefix
    ("10" + "0" * 17, UnknownCode("unsupported payment code")),  # 19 digits, WeChat prefix
    ("28" + "0" * 16, PaymentCode(PaymentMethod.ALIPAY, "28" + "0" * 16)),  # 18, Alipay prefix
    ("30" + "0" * 22, PaymentCode(PaymentMethod.ALIPAY, "30" + "0" * 22)),  # 24, highest
    ("25" + "0" * 23, UnknownCode("unsupported payment code")),  # 25 digits
    ("1" * 30, UnknownCode("unsupported payment code")),
    ("1" * 256, UnknownCode("unsupported payment code")),  # the longest scan kept
    ("1" * 257, UnknownCode("code too long")),
]


def test_the_examples_cover_every_length_from_1_to_25() -> None:
    lengths = {len(code) for code, _ in EXAMPLES}
    assert set(range(1, 26)) - lengths == {3, 4, 5, 20, 21, 22, 23}
    assert {30, 256, 257} <= lengths


@pytest.mark.parametrize(
    ("code", "result"), EXAMPLES, ids=[f"{len(c)}:{c[:24]}" for c, _ in EXAMPLES]
)
def test_explicit_examples(code: str, result: Classified) -> None:
    assert classify(code) == result
    assert classify(f"  {code}\r\n") == result  # scanners add a suffix; it is not the code
    assert expected(code) == result  # the rule the strategy below checks says the same


@pytest.mark.parametrize("length", range(1, 31))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_digit_string_of_each_length(length: int, data: st.DataObject) -> None:
    code = data.draw(st.text(alphabet="0123456789", min_size=length, max_size=length))
    assert classify(code) == expected(code)


@pytest.mark.parametrize("length", [16, 17, 18, 19, 20, 21, 22, 23, 24])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_payment_prefixes_at_each_payment_length(length: int, data: st.DataObject) -> None:
    """Prefixes 09-31 are where the networks' ranges start and end: draw them on purpose."""
    prefix = data.draw(st.integers(9, 31))
    rest = data.draw(st.text(alphabet="0123456789", min_size=length - 2, max_size=length - 2))
    code = f"{prefix:02d}{rest}"
    assert classify(code) == expected(code)
    method = classify_payment_code(code)
    assert method == (result.method if isinstance(result := expected(code), PaymentCode) else None)


@given(st.text(alphabet="0123456789", min_size=1, max_size=14))
@example("6901028075831")
def test_a_gs1_code_with_any_other_last_digit_is_refused(body: str) -> None:
    """Exactly one check digit is right for each GS1 length; every other one is refused."""
    for length in (8, 12, 13):
        code = (body * length)[: length - 1]
        right = str(gtin_check_digit(code))
        assert gtin_valid(code + right)
        for wrong in set("0123456789") - {right}:
            assert classify(code + wrong) == UnknownCode("barcode check digit is wrong")


@pytest.mark.parametrize(
    "text",
    [
        "".join(chr(0xFF10 + int(d)) for d in "134567890123456789"),  # full-width digits
        "".join(chr(0x0660 + int(d)) for d in "134567890123456789"),  # Arabic-Indic digits
        "13456789012345678x",
        "",
        "1",
        "-134567890123456789",
    ],
)
def test_payment_code_classifier_refuses_what_is_not_ascii_digits(text: str) -> None:
    assert classify_payment_code(text) is None


def test_gtin_check_digit_matches_published_codes() -> None:
    assert gtin_check_digit("690102807583") == 1  # EAN-13
    assert gtin_check_digit("6901234") == 1  # EAN-8
    assert gtin_check_digit("03600029145") == 2  # UPC-A
    assert gtin_check_digit("1690102807583") == 8  # GTIN-14
    assert not gtin_valid("1")
    assert not gtin_valid("")
    assert gtin_valid("00")
