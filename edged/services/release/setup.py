"""Builds the release service for the composition root: `setup(...)` returns it, or None when
the device is not a vending counter or has no release device."""

from __future__ import annotations

from typing import Any

from edged.config.models import DaemonConfig
from edged.control.server import CommandError, ControlServer
from edged.runtime.supervisor import Role
from edged.services.release.service import ReleaseService, ReleaseSettings
from edged.store import Store
from edged.store.outbox import Outbox
from hal.display.protocol import Display
from hal.release.protocol import ReleaseDevice


async def setup(
    config: DaemonConfig,
    store: Store,
    outbox: Outbox,
    control: ControlServer,
    supervisor: Any,
    add_status: Any,
    on_close: Any,
    *,
    device: ReleaseDevice | None,
    display: Display,
) -> ReleaseService | None:
    if device is None or config.device.kind != "vending":
        return None
    vending = config.vending
    service = ReleaseService(
        store,
        outbox,
        device,
        display,
        ReleaseSettings(
            door_slot=vending.door_slot,
            open_within_s=vending.open_within_s,
            left_open_s=vending.left_open_s,
            restart_window_s=vending.restart_window_s,
        ),
    )
    on_close(device.close)
    # A device task: an unplugged relay board is restarted with backoff, never stops the
    # daemon; paid releases wait for it (within the restart window) or are refunded.
    supervisor.start("release", service.run, Role.DEVICE)
    add_status("release", service.status)
    register_commands(control, device)
    return service


def register_commands(control: ControlServer, device: ReleaseDevice) -> None:
    async def sim_door(args: dict[str, Any]) -> dict[str, Any]:
        from hal.release.door import RelayDoor
        from hal.release.sim import SimulatedDoorSensor

        sensor = device.sensor if isinstance(device, RelayDoor) else None
        if not isinstance(sensor, SimulatedDoorSensor):
            raise CommandError('sim.door needs a simulated door sensor ([release.sensor] "sim")')
        slot = args.get("slot", 1)
        state = args.get("state")
        if not isinstance(slot, int) or isinstance(slot, bool):
            raise CommandError("slot must be a whole number")
        if state not in ("open", "closed"):
            raise CommandError('state must be "open" or "closed"')
        try:
            sensor.set_door(slot, state == "open")
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        return {"slot": slot, "door": state}

    control.register("sim.door", sim_door)
