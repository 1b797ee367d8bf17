"""The fleet-config part: the retained `cfg` layers of three scopes, and the health gate.

`starting_config` runs before any other part is built (it decides which layers this start
uses); `setup` then registers the `cfg` handler and the one task that applies, gates and
commits, or rolls back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from edged.config import DaemonConfig
from edged.contract.topics import Downlink
from edged.runtime.supervisor import Role
from edged.services.fleet_config.service import FleetConfig, GateProbe, LiveParts, Running
from edged.services.fleet_config.startup import StartingConfig, starting_config
from edged.services.fleet_config.state import ConfigStore
from edged.services.part import PartContext
from edged.store.database import Store
from edged.store.outbox import Outbox


async def starting(
    store: Store, outbox: Outbox, file_raw: Mapping[str, Any], file_config: DaemonConfig
) -> StartingConfig:
    return await starting_config(store, ConfigStore(outbox), file_raw, file_config)


async def setup(
    ctx: PartContext,
    *,
    file_raw: Mapping[str, Any],
    start: StartingConfig,
    busy: Callable[[], bool],
    probe: GateProbe,
    request_reload: Callable[[], None],
    live: LiveParts,
) -> FleetConfig:
    fleet = FleetConfig(
        ctx.store,
        ConfigStore(ctx.outbox),
        ctx.clock,
        Running(file_raw, start.config, start.layers, start.gate),
        busy=busy,
        probe=probe,
        request_reload=request_reload,
        live=live,
    )
    ctx.downlink.register(Downlink.CFG, fleet.handle_downlink)
    ctx.control.register("config.show", fleet.show)
    ctx.add_status("fleet_config", fleet.status)
    ctx.supervisor.start("fleet-config", fleet.run, Role.CORE)
    return fleet
