"""The release part for the composition root: `setup(ctx, ...)` returns the service, or None
when the device is not a vending counter or has no release device."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edged.control.server import CommandError, ControlServer
from edged.runtime.supervisor import Role
from edged.services.part import PartContext
from hal.display.protocol import Display
from hal.release.protocol import ReleaseDevice

if TYPE_CHECKING:
    from edged.services.release.service import ReleaseService


async def setup(
    ctx: PartContext, *, device: ReleaseDevice | None, display: Display
) -> ReleaseService | None:
    """The release part of a vending counter; None on a kiosk or without a release device."""
    if device is None or ctx.config.device.kind != "vending":
        return None
    from edged.services.release.service import ReleaseService, ReleaseSettings  # vending only

    vending = ctx.config.vending
    service = ReleaseService(
        ctx.store,
        ctx.outbox,
        device,
        display,
        ReleaseSettings(
            door_slot=vending.door_slot,
            open_within_s=vending.open_within_s,
            left_open_s=vending.left_open_s,
            restart_window_s=vending.restart_window_s,
        ),
    )
    ctx.on_close(device.close)
    # A device task: an unplugged relay board is restarted with backoff, never stops the
    # daemon; paid releases wait for it (within the restart window) or are refunded.
    ctx.supervisor.start("release", service.run, Role.DEVICE)
    ctx.add_status("release", service.status)
    register_commands(ctx.control, device)
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
