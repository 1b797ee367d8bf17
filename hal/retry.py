"""What a driver needs from a retry backoff, so hal stays free of edged.

A driver that reopens a lost device waits `next_delay()` between attempts and calls
`reset()` once the device is back. The one backoff helper lives in `edged.runtime.backoff`;
the composition root hands its class to `hal.factory.build_devices` as the `BackoffFactory`.
"""

from __future__ import annotations

from typing import Protocol

REOPEN_INITIAL_S = 0.5
REOPEN_MAXIMUM_S = 5.0
"""How fast a scanner driver looks for an unplugged scanner again."""


class RetryDelays(Protocol):
    def next_delay(self) -> float: ...

    def reset(self) -> None: ...


class BackoffFactory(Protocol):
    def __call__(self, initial_s: float, maximum_s: float) -> RetryDelays: ...
