"""The development default: the simulated cloud beside a daemon that runs the embedded broker.

With no config file `edged run` has an embedded broker and `cloud.mode = "simulated"`; the
simulated backend then runs in the daemon's process (its own paho thread, connected to that
broker over loopback like any other client), so `edged sim scan` with a payment code pays
out of the box. With an external broker the simulator is a separate `edged cloudsim`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from edged.cloudsim.keys import simulated_keys_dir
from edged.config.models import DaemonConfig

log = logging.getLogger("edged.cloudsim")

Closer = Callable[[], Awaitable[None]]


async def start_beside_daemon(
    config: DaemonConfig,
    host: str,
    port: int,
    on_close: Callable[[Closer], None],
    *,
    mqtt5: bool,
) -> bool:
    """Start the simulator when the config asks for both embedded parts; True if started."""
    if config.cloud.mode != "simulated" or config.broker.mode != "embedded":
        return False
    from edged.cloudsim.server import CloudSim

    sim = CloudSim(
        host,
        port,
        simulated_keys_dir(config),
        mqtt5=mqtt5,  # as the daemon's link: MQTT 5 on Mosquitto, 3.1.1 on amqtt
        client_id=f"edged-cloudsim-{config.device.id}",
    )
    await asyncio.to_thread(sim.start)

    async def stop() -> None:
        await asyncio.to_thread(sim.stop)

    on_close(stop)
    log.info("simulated cloud running beside the daemon", extra={"broker": f"{host}:{port}"})
    return True
