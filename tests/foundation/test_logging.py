"""Logs are one JSON event per line, and payment codes, keys and tokens never appear."""

from __future__ import annotations

import io
import json
import logging

import pytest

from edged.runtime.logs import JsonFormatter

WECHAT_CODE = "134567890123456789"
ALIPAY_CODE = "2812345678901234"
PEM = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ\n-----END PRIVATE KEY-----"


@pytest.fixture
def captured() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(journald=False))
    logger = logging.getLogger("test.redaction")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, stream


def test_each_event_is_one_json_line_with_its_fields(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info("printer recovered", extra={"job": 7, "detail": "第二行\nline"})

    [line] = stream.getvalue().splitlines()
    event = json.loads(line)
    assert event["event"] == "printer recovered"
    assert event["level"] == "info"
    assert event["job"] == 7
    assert event["detail"] == "第二行\nline"


def test_payment_codes_keys_and_tokens_are_redacted_everywhere(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.warning(f"scan {WECHAT_CODE} rejected", extra={"raw": f"code={ALIPAY_CODE}"})
    logger.info("connect", extra={"password": "hunter2", "technician_token": "t0k3n"})
    logger.info("key loaded", extra={"material": PEM, "signature": "c2lnbmF0dXJl"})
    logger.info("nested", extra={"request": {"auth_code": "anything", "items": [WECHAT_CODE]}})
    try:
        raise ValueError(f"bad code {WECHAT_CODE}")
    except ValueError:
        logger.exception("failed")

    text = stream.getvalue()
    for secret in (WECHAT_CODE, ALIPAY_CODE, "hunter2", "t0k3n", "MC4CAQAw", "c2lnbmF0dXJl"):
        assert secret not in text
    assert "anything" not in text
    assert text.count("[redacted]") >= 8
    assert all(json.loads(line) for line in text.splitlines())


def test_product_barcodes_and_amounts_stay_readable(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info("added 6901234567892", extra={"price_fen": 350, "trade_no": "K20261121000001"})

    event = json.loads(stream.getvalue())
    assert event["event"] == "added 6901234567892"
    assert event["price_fen"] == 350
    assert event["trade_no"] == "K20261121000001"


def test_journald_lines_carry_a_syslog_priority() -> None:
    record = logging.LogRecord("edged", logging.ERROR, __file__, 1, "store failed", None, None)
    line = JsonFormatter(journald=True).format(record)
    assert line.startswith("<3>{")
