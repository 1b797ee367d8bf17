"""Small waiting helpers shared by the hardware tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(predicate: Callable[[], object], within: float = 3.0) -> None:
    """Poll a condition the driver reaches on its own (device found, port reopened)."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - driver state has no event to wait on
            await asyncio.sleep(0.005)
