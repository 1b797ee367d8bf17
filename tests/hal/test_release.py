"""The release device: relay frames on a real pseudo-terminal, GPIO lines through a libgpiod v2
stand-in, and the door's timing rules (opened, closed, not opened in time, left open)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from hal.config import GpioDoorSensor, GpioRelease, SerialRelease, SimDoorSensor, SimRelease
from hal.device import DeviceError, DeviceKind
from hal.doctor import System, UserInfo, diagnose_release
from hal.factory import build_release
from hal.release.door import RelayDoor
from hal.release.gpio import GpioDoorSensor as GpioSensorDriver
from hal.release.gpio import GpioRelay
from hal.release.protocol import DoorEvent, DoorEventKind
from hal.release.serial_relay import SerialRelayBoard, frame
from hal.release.sim import SimulatedDoorSensor, SimulatedRelay
from tests.hal.fake_gpiod import Bias, Direction, Edge, FakeChip, FakeGpiod, Value
from tests.hal.helpers import until
from tests.support.pty import Pty

ON_1 = bytes.fromhex("A00101A2")
OFF_1 = bytes.fromhex("A00100A1")
OFF_2 = bytes.fromhex("A00200A2")
ON_2 = bytes.fromhex("A00201A3")


class Running:
    """A release device's run() task and the events it emitted, in order."""

    def __init__(self, device: RelayDoor) -> None:
        self.device = device
        self.events: asyncio.Queue[DoorEvent] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _emit(self, event: DoorEvent) -> None:
        self.events.put_nowait(event)

    async def start(self) -> None:
        self.task = asyncio.create_task(self.device.run(self._emit))
        await until(lambda: self.device.status().ok or (self.task is not None and self.task.done()))

    async def next(self, within: float = 3.0) -> tuple[int, DoorEventKind]:
        event = await asyncio.wait_for(self.events.get(), within)
        return event.slot, event.kind

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture
def relay_pty(tmp_path: Path) -> Iterator[Pty]:
    pty = Pty(tmp_path / "edged-relay")
    yield pty
    pty.close()


@pytest.fixture
async def serial_door(relay_pty: Pty) -> AsyncIterator[tuple[Running, SimulatedDoorSensor]]:
    sensor = SimulatedDoorSensor(2, shopper="manual")
    device = RelayDoor(SerialRelayBoard(str(relay_pty.link), 9600, [1, 2]), sensor, 2)
    running = Running(device)
    await running.start()
    yield running, sensor
    await running.stop()
    await device.close()


def test_relay_frames_are_start_channel_state_and_sum() -> None:
    assert frame(1, True) == ON_1
    assert frame(1, False) == OFF_1
    assert frame(2, True) == ON_2
    assert frame(8, True) == bytes.fromhex("A00801A9")
    assert frame(0xFF, True) == bytes.fromhex("A0FF01A0")  # the sum keeps its low byte
    with pytest.raises(ValueError, match="out of range"):
        frame(0, True)


async def test_serial_relay_starts_locked_and_unlocks_until_the_door_opens(
    serial_door: tuple[Running, SimulatedDoorSensor], relay_pty: Pty
) -> None:
    running, sensor = serial_door
    assert relay_pty.read_exactly(8) == OFF_1 + OFF_2  # starting switches every channel off
    await running.device.release(1, open_within_s=5, left_open_s=5)
    assert relay_pty.read_exactly(4) == ON_1
    assert await running.device.door_open(1) is False
    sensor.set_door(1, True)
    assert await running.next() == (1, DoorEventKind.OPENED)
    assert relay_pty.read_exactly(4) == OFF_1  # locked again the moment it opened
    assert await running.device.door_open(1) is True
    sensor.set_door(1, False)
    assert await running.next() == (1, DoorEventKind.CLOSED)
    assert relay_pty.read_all() == b""
    status = running.device.status()
    assert (status.kind, status.driver, status.ok) == (DeviceKind.RELEASE, "serial+sim", True)


async def test_a_door_not_opened_in_time_is_locked_again(
    serial_door: tuple[Running, SimulatedDoorSensor], relay_pty: Pty
) -> None:
    running, _sensor = serial_door
    relay_pty.read_exactly(8)
    await running.device.release(2, open_within_s=0.2, left_open_s=5)
    assert relay_pty.read_exactly(4) == ON_2
    assert await running.next() == (2, DoorEventKind.NOT_OPENED)
    assert relay_pty.read_exactly(4) == OFF_2


async def test_a_door_left_open_raises_the_alarm_once_then_reports_the_close(
    serial_door: tuple[Running, SimulatedDoorSensor], relay_pty: Pty
) -> None:
    running, sensor = serial_door
    await running.device.release(1, open_within_s=5, left_open_s=0.2)
    sensor.set_door(1, True)
    assert await running.next() == (1, DoorEventKind.OPENED)
    assert await running.next() == (1, DoorEventKind.LEFT_OPEN)
    status = running.device.status()
    assert (status.ok, status.detail) == (False, "left open: slot 1")  # health shows the alarm
    await asyncio.sleep(0.3)
    assert running.events.empty()  # one alarm, not one per interval
    sensor.set_door(1, False)
    assert await running.next() == (1, DoorEventKind.CLOSED)
    assert running.device.status().ok


async def test_one_release_at_a_time_per_slot_and_only_real_slots(
    serial_door: tuple[Running, SimulatedDoorSensor], relay_pty: Pty
) -> None:
    running, _ = serial_door
    relay_pty.read_exactly(8)
    await running.device.release(1, open_within_s=5, left_open_s=5)
    with pytest.raises(DeviceError, match="already being released"):
        await running.device.release(1, open_within_s=5, left_open_s=5)
    with pytest.raises(ValueError, match="slot 3 does not exist"):
        await running.device.release(3, open_within_s=5, left_open_s=5)
    assert relay_pty.read_exactly(4) == ON_1 and relay_pty.read_all() == b""
    await running.device.relock(1)
    assert relay_pty.read_exactly(4) == OFF_1


async def test_stopping_locks_every_slot(relay_pty: Pty) -> None:
    device = RelayDoor(SerialRelayBoard(str(relay_pty.link), 9600, [1]), None, 1)
    running = Running(device)
    await running.start()
    relay_pty.read_exactly(4)
    await device.release(1, open_within_s=30, left_open_s=30)
    assert relay_pty.read_exactly(4) == ON_1
    await running.stop()
    assert relay_pty.read_exactly(4) == OFF_1
    await device.close()


async def test_without_a_sensor_the_lock_is_pulsed(relay_pty: Pty) -> None:
    device = RelayDoor(SerialRelayBoard(str(relay_pty.link), 9600, [1]), None, 1)
    running = Running(device)
    await running.start()
    try:
        relay_pty.read_exactly(4)
        assert await device.door_open(1) is None
        await device.release(1, open_within_s=0.1, left_open_s=30)
        assert relay_pty.read_exactly(4) == ON_1
        assert await running.next() == (1, DoorEventKind.PULSED)
        assert relay_pty.read_exactly(4) == OFF_1
    finally:
        await running.stop()
        await device.close()


async def test_an_unplugged_relay_board_refuses_to_release(relay_pty: Pty) -> None:
    device = RelayDoor(SerialRelayBoard(str(relay_pty.link), 9600, [1]), None, 1)
    with pytest.raises(DeviceError, match="not running"):
        await device.release(1, open_within_s=1, left_open_s=1)
    relay_pty.unplug()
    running = Running(device)
    await running.start()
    assert running.task is not None and running.task.done()
    with pytest.raises(DeviceError, match="cannot open"):
        running.task.result()
    status = device.status()
    assert not status.present and not status.ok and "cannot open" in status.detail
    await device.close()


async def test_simulated_shopper_takes_the_goods() -> None:
    device = build_release(SimRelease(sensor=SimDoorSensor(open_after_s=0.05, close_after_s=0.05)))
    assert isinstance(device, RelayDoor) and isinstance(device.relay, SimulatedRelay)
    running = Running(device)
    await running.start()
    try:
        await device.release(1, open_within_s=2, left_open_s=2)
        assert await running.next() == (1, DoorEventKind.OPENED)
        assert await running.next() == (1, DoorEventKind.CLOSED)
        assert device.relay.unlocks == 1 and device.relay.energised == set()
    finally:
        await running.stop()
        await device.close()


# -- GPIO (libgpiod v2) ---------------------------------------------------------------------

RELAY_LINE, DOOR_LINE = 17, 27


@pytest.fixture
def chip() -> FakeChip:
    chip = FakeChip("/dev/gpiochip0")
    chip.drive(DOOR_LINE, 0)  # door shut: the reed switch pulls the line low
    return chip


async def test_gpio_relay_and_door_switch(chip: FakeChip) -> None:
    gpiod = FakeGpiod(chip)
    relay = GpioRelay(chip.path, [RELAY_LINE], active_low=True, gpiod=gpiod.module)
    sensor = GpioSensorDriver(chip.path, [DOOR_LINE], debounce_ms=30, gpiod=gpiod.module)
    device = RelayDoor(relay, sensor, 1)
    running = Running(device)
    await running.start()
    try:
        _, relay_settings, relay_request = chip.requested[RELAY_LINE]
        assert relay_settings.direction is Direction.OUTPUT
        assert relay_settings.output_value is Value.INACTIVE and relay_settings.active_low
        consumer, door_settings, _ = chip.requested[DOOR_LINE]
        assert consumer == "edged-door"
        assert door_settings.direction is Direction.INPUT
        assert door_settings.edge_detection is Edge.BOTH
        assert door_settings.bias is Bias.PULL_UP
        assert door_settings.debounce_period == timedelta(milliseconds=30)
        assert chip.level(RELAY_LINE) == 1  # active-low relay module: high is off
        await device.release(1, open_within_s=5, left_open_s=5)
        assert chip.level(RELAY_LINE) == 0  # energised
        chip.drive(DOOR_LINE, 1)
        assert await running.next() == (1, DoorEventKind.OPENED)
        assert chip.level(RELAY_LINE) == 1
        chip.drive(DOOR_LINE, 0)
        assert await running.next() == (1, DoorEventKind.CLOSED)
        # requested locked (output_value INACTIVE), then one unlock and one relock
        assert [value for _, value in relay_request.writes] == [Value.ACTIVE, Value.INACTIVE]
    finally:
        await running.stop()
        await device.close()
    assert chip.requested == {}  # both requests released


async def test_gpio_line_already_taken_is_a_clear_device_error(chip: FakeChip) -> None:
    gpiod = FakeGpiod(chip)
    gpiod.request_lines(chip.path, consumer="someone-else", config={RELAY_LINE: None})
    device = RelayDoor(GpioRelay(chip.path, [RELAY_LINE], gpiod=gpiod.module), None, 1)
    running = Running(device)
    await running.start()
    assert running.task is not None and running.task.done()
    with pytest.raises(DeviceError, match=r"cannot request GPIO lines \[17\] on /dev/gpiochip0"):
        running.task.result()
    assert "Device or resource busy" in device.status().detail


async def test_gpio_without_the_gpiod_package_says_how_to_install_it() -> None:
    relay = GpioRelay("/dev/gpiochip0", [RELAY_LINE])
    with pytest.raises(DeviceError, match=r"pip install 'edged\[gpio\]'"):
        await relay.open()


# -- config and doctor ------------------------------------------------------------------------


def test_release_config_checks_slots_against_sensors_and_lines() -> None:
    with pytest.raises(ValidationError, match="names 1 door switches for 2 slots"):
        SerialRelease(
            driver="serial",
            port="/dev/edged-relay",
            channels=[1, 2],
            sensor=GpioDoorSensor(driver="gpio", lines=[5]),
        )
    with pytest.raises(ValidationError, match="a relay channel appears twice"):
        SerialRelease(driver="serial", port="/dev/edged-relay", channels=[1, 1])
    with pytest.raises(ValidationError, match="share a line"):
        GpioRelease(driver="gpio", relay_lines=[5], sensor=GpioDoorSensor(driver="gpio", lines=[5]))


def test_doctor_names_the_missing_relay_and_gpio_package(tmp_path: Path) -> None:
    user = UserInfo("edged", uid=54321, gids=frozenset({54321}))
    system = System(sys_root=tmp_path, proc_root=Path("/proc"), dev_root=tmp_path)
    serial = diagnose_release(
        SerialRelease(driver="serial", port=str(tmp_path / "edged-relay")), user, system
    )
    assert serial is not None and not serial.present
    assert serial.problems == [f"{tmp_path}/edged-relay does not exist"]
    assert "no door sensor" in serial.notes[-1]
    gpio = diagnose_release(
        GpioRelease(driver="gpio", chip=str(tmp_path / "gpiochip0"), relay_lines=[17]),
        user,
        system,
    )
    assert gpio is not None and not gpio.ok
    assert "python package 'gpiod' (libgpiod v2 bindings) is not installed" in gpio.problems
    assert f"{tmp_path}/gpiochip0 does not exist" in gpio.problems
