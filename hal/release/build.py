"""Build a release device from its config section: a relay and its door sensors."""

from __future__ import annotations

from hal.config import (
    DoorSensorConfig,
    GpioDoorSensor,
    GpioRelease,
    NoRelease,
    ReleaseConfig,
    SerialRelease,
    SimDoorSensor,
    SimRelease,
)
from hal.release.door import RelayDoor
from hal.release.parts import DoorSensor, Relay


def build_sensor(config: DoorSensorConfig, slots: int) -> DoorSensor | None:
    if isinstance(config, SimDoorSensor):
        from hal.release.sim import SimulatedDoorSensor

        return SimulatedDoorSensor(slots, config.shopper, config.open_after_s, config.close_after_s)
    if isinstance(config, GpioDoorSensor):
        from hal.release.gpio import GpioDoorSensor as GpioSensorDriver

        return GpioSensorDriver(
            config.chip,
            list(config.lines),
            active_low=config.active_low,
            bias=config.bias,
            debounce_ms=config.debounce_ms,
        )
    return None


def build_release_device(config: ReleaseConfig) -> RelayDoor | None:
    if isinstance(config, NoRelease):
        return None
    sensor = build_sensor(config.sensor, config.slots)
    relay: Relay
    if isinstance(config, SimRelease):
        from hal.release.sim import SimulatedRelay

        relay = SimulatedRelay()
    elif isinstance(config, SerialRelease):
        from hal.release.serial_relay import SerialRelayBoard

        relay = SerialRelayBoard(config.port, config.baudrate, list(config.channels))
    elif isinstance(config, GpioRelease):
        from hal.release.gpio import GpioRelay

        relay = GpioRelay(config.chip, list(config.relay_lines), config.relay_active_low)
    else:
        raise ValueError(f"unknown release driver {config.driver!r}")
    return RelayDoor(relay, sensor, config.slots)
