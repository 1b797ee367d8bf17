"""Wall time plus whether it can be trusted: a Pi has no RTC and boots with a wrong clock."""

from __future__ import annotations

import ctypes
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

TIME_ERROR = 5
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")
"""systemd-timesyncd creates this once NTP has set the clock."""


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def synced(self) -> bool: ...


RECHECK_UNSYNCED_S = 5.0
"""An unsynced clock is asked again at most this often: records ask on every write."""


class SystemClock:
    def __init__(self, sync_flag: Path = TIMESYNC_FLAG) -> None:
        self._sync_flag = sync_flag
        self._known_synced = False
        self._next_check = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def synced(self) -> bool:
        """Once synced, always synced (NTP keeps it so); until then, re-asked now and then."""
        if not self._known_synced and time.monotonic() >= self._next_check:
            self._known_synced = self._sync_flag.exists() or _kernel_says_synced()
            self._next_check = time.monotonic() + RECHECK_UNSYNCED_S
        return self._known_synced


def _kernel_says_synced() -> bool:
    """Ask the kernel (adjtimex, read-only): TIME_ERROR (5) means the clock is unsynchronised."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        timex = ctypes.create_string_buffer(512)  # struct timex with modes=0: a pure query
        return int(libc.adjtimex(timex)) not in (-1, TIME_ERROR)
    except (OSError, AttributeError):
        return False
