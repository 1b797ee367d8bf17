"""The one retry/backoff helper: exponential with full jitter, reset after a success.

Full jitter: each delay is drawn uniformly between `initial_s` and the current ceiling
(`initial_s * factor**attempt`, capped at `maximum_s`), so a fleet that lost its broker at
the same instant spreads its retries over the whole window instead of arriving in waves.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial_s: float = 0.5
    maximum_s: float = 60.0
    factor: float = 2.0
    jitter: bool = True
    _attempt: int = field(default=0, init=False)
    _rng: random.Random = field(default_factory=random.Random, init=False, repr=False)

    @property
    def attempt(self) -> int:
        return self._attempt

    def ceiling(self) -> float:
        """The largest delay the next call may return."""
        return max(
            self.initial_s,
            min(self.maximum_s, self.initial_s * self.factor ** min(self._attempt, 64)),
        )

    def next_delay(self, *, widest: bool = False) -> float:
        """The next delay; `widest` draws it over the whole window up to `maximum_s` at once
        (what a broker that says it is busy or over quota asks for)."""
        ceiling = max(self.initial_s, self.maximum_s) if widest else self.ceiling()
        self._attempt += 1
        if not self.jitter:
            return ceiling
        return self._rng.uniform(self.initial_s, ceiling)

    def reset(self) -> None:
        self._attempt = 0
