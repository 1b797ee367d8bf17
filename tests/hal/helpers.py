"""Small waiting helpers shared by the hardware tests: the suite's bounded poll."""

from __future__ import annotations

from tests.support.polling import until

__all__ = ["until"]
