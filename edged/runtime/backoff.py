"""The one retry/backoff helper: exponential with full jitter, reset after a success."""

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

    def next_delay(self) -> float:
        ceiling = min(self.maximum_s, self.initial_s * self.factor**self._attempt)
        self._attempt += 1
        if not self.jitter:
            return ceiling
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempt = 0
