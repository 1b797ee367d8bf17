"""Structured logs: one JSON event per line on stderr, journald-friendly, secrets redacted.

Redaction happens in the formatter, the one place every record passes, so a payment code or
a key cannot reach the journal even from a library's log call.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections import deque
from datetime import UTC, datetime
from typing import Any

REDACTED = "[redacted]"

SECRET_FIELD = re.compile(
    r"(pass(word)?|secret|token|auth_?code|pay(ment)?_?code|private|priv_?key|sig(nature)?|seal(ed)?)$",
    re.IGNORECASE,
)
PAYMENT_CODE = re.compile(r"(?<!\d)(?:1[0-5]\d{16}|(?:2[5-9]|30)\d{14,22})(?!\d)")
"""WeChat Pay (18 digits, 10-15) and Alipay (16-24 digits, 25-30) payment codes."""
PEM_BLOCK = re.compile(r"-----BEGIN [A-Z ]+-----.*?-----END [A-Z ]+-----", re.DOTALL)

JOURNAL_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def redact_text(text: str) -> str:
    return PEM_BLOCK.sub(REDACTED, PAYMENT_CODE.sub(REDACTED, text))


def redact(value: Any, key: str = "") -> Any:
    if key and SECRET_FIELD.search(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact_text(str(value))


class JsonFormatter(logging.Formatter):
    def __init__(self, journald: bool) -> None:
        super().__init__()
        self._journald = journald

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact_text(record.getMessage()),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRS and not name.startswith("_"):
                event[name] = redact(value, name)
        if record.exc_info:
            event["error"] = redact_text(self.formatException(record.exc_info))
        line = json.dumps(event, ensure_ascii=False, default=str)
        if self._journald:
            return f"<{JOURNAL_PRIORITY.get(record.levelno, 6)}>{line}"
        return line


class RecentLogLines(logging.Handler):
    """The last log lines, formatted and redacted like the journal's, for diagnostics.

    Whoever installs it on a logger removes it again (`close`): no module-level buffer.
    """

    def __init__(self, capacity: int = 500) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter(journald=False))
        self._lines: deque[str] = deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record))
        except Exception:  # a log line must never break the code that logged it
            self.handleError(record)

    def lines(self, count: int) -> list[str]:
        return list(self._lines)[-count:] if count > 0 else []


def configure_logging(level: str = "INFO") -> None:
    """Route every logger through the JSON formatter; call once, from the CLI entry point."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(journald="JOURNAL_STREAM" in os.environ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("EDGED_LOG_LEVEL", level).upper())
    for noisy in ("amqtt", "transitions", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
