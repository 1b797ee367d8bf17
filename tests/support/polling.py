"""Bounded polling: wait for a condition the code reaches on its own, or fail saying what.

Use these instead of sleeping and then asserting: a sleep is too short on a loaded machine
(the test fails for nothing) and too long on an idle one (the suite crawls), and it proves
nothing about order. A poll returns as soon as the condition holds and fails after `within_s`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

POLL_S = 0.005


async def until(
    check: Callable[[], object] | Callable[[], Awaitable[object]],
    within_s: float = 3.0,
    what: str = "",
) -> None:
    """Poll `check` (sync or async) on the running loop until it returns something true."""
    deadline = time.monotonic() + within_s
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {within_s} s: {what or _name(check)}")
        await asyncio.sleep(POLL_S)


def wait_until(check: Callable[[], object], within_s: float = 10.0, what: str = "") -> None:
    """The same for synchronous tests (a daemon process, a broker observer)."""
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {within_s} s: {what or _name(check)}")
        time.sleep(POLL_S * 4)


def _name(check: Callable[..., object]) -> str:
    return getattr(check, "__qualname__", repr(check))
