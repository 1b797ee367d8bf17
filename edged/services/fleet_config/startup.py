"""Which remote layers the daemon starts with: decided before any other part is built.

The local file is read first (it says where the store is); the store then says whether a
candidate is inside its health gate. A candidate gets its planned start and, after a crash
inside the gate, one more; the start after that rolls back to the committed layers, so a
config that kills the process cannot loop it. A layer set that no longer validates over
today's file (the file changed under it) is dropped the same way, with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from edged.config import ConfigError, DaemonConfig
from edged.config.layers import Layers, build_config, effective_hash
from edged.contract.bodies import ConfigProblem, ConfigStatus
from edged.services.fleet_config.state import ConfigStore
from edged.store.database import Statements, Store

log = logging.getLogger("edged.fleet_config")

MAX_STARTS_WITH_CANDIDATE = 2
"""The planned start of a candidate, plus one retry after a crash inside its health gate."""


@dataclass(frozen=True)
class StartingConfig:
    config: DaemonConfig
    layers: Layers
    gate: bool
    """True when this start runs a candidate inside its health gate."""


async def starting_config(
    store: Store, config_store: ConfigStore, file_raw: Mapping[str, Any], file_config: DaemonConfig
) -> StartingConfig:
    async with store.transaction() as tx:
        return await tx.run(lambda s: _decide(s, config_store, file_raw, file_config))


def _decide(
    s: Statements, config_store: ConfigStore, file_raw: Mapping[str, Any], file_config: DaemonConfig
) -> StartingConfig:
    record = config_store.load(s)
    committed = _usable(record.committed, file_raw)
    if record.phase == "applying" and record.candidate is not None:
        starts = record.attempts + 1
        candidate = _usable(record.candidate, file_raw)
        if isinstance(candidate, DaemonConfig) and starts <= MAX_STARTS_WITH_CANDIDATE:
            config_store.save(s, replace(record, attempts=starts), effective_hash(candidate))
            return StartingConfig(candidate, record.candidate, gate=True)
        why = (
            f"the daemon stopped {starts - 1} times inside the health gate"
            if isinstance(candidate, DaemonConfig)
            else candidate
        )
        config_store.invalidate(s, _changed(record.candidate, record.committed))
        base = committed if isinstance(committed, DaemonConfig) else file_config
        config_store.save(
            s,
            replace(
                record,
                candidate=None,
                phase="committed",
                attempts=0,
                applying_since=None,
                status=ConfigStatus.ROLLED_BACK,
                error=ConfigProblem(key="<start>", message=f"rolled back at start: {why}"),
            ),
            effective_hash(base),
        )
        log.error("remote config rolled back at start", extra={"reason": why})
    if isinstance(committed, DaemonConfig):
        return StartingConfig(committed, record.committed, gate=False)
    log.error("committed remote config no longer valid over the file", extra={"reason": committed})
    return StartingConfig(file_config, {}, gate=False)


def _usable(layers: Layers, file_raw: Mapping[str, Any]) -> DaemonConfig | str:
    try:
        return build_config(file_raw, layers)
    except ConfigError as exc:
        return "; ".join(exc.problems)


def _changed(candidate: Layers, committed: Layers) -> Layers:
    return {
        scope: item
        for scope, item in candidate.items()
        if committed.get(scope, {}).get("version") != item.get("version")
    }
