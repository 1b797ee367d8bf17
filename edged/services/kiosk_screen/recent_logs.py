"""The daemon's newest log events for the technician page, redacted like the journal's."""

from __future__ import annotations

import json
import logging
from collections import deque
from typing import Any

from edged.runtime.logs import JsonFormatter

KEEP = 200


class RecentLogs(logging.Handler):
    def __init__(self, keep: int = KEEP) -> None:
        super().__init__(logging.INFO)
        self._events: deque[str] = deque(maxlen=keep)
        self.setFormatter(JsonFormatter(journald=False))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._events.append(self.format(record))
        except Exception:  # a log line must never break the code that logged it
            self.handleError(record)

    def newest(self, count: int = 50) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self._events)[-count:]]

    def attach(self) -> None:
        logging.getLogger().addHandler(self)

    async def detach(self) -> None:
        logging.getLogger().removeHandler(self)
