"""A relay and (optionally) door sensors as one release device, with the door's timing rules.

Per release: energise the slot's channel; the moment its sensor reads open, de-energise (the
door latches again when it closes) and report `opened`; nobody opened within `open_within_s`:
de-energise, report `not_opened`. Once opened: `closed` when it closes, `left_open` (once)
when it stays open beyond `left_open_s`, then still `closed` when it finally closes. Without
a sensor the channel is energised for `open_within_s` and the release ends `pulsed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from hal.device import DeviceError, DeviceKind, DeviceStatus
from hal.release.parts import DoorSensor, Relay
from hal.release.protocol import DoorEvent, DoorEventKind, DoorEventSink

log = logging.getLogger(__name__)


class RelayDoor:
    def __init__(self, relay: Relay, sensor: DoorSensor | None, slots: int) -> None:
        if slots < 1:
            raise ValueError("a release device has at least one slot")
        self.relay = relay
        self.sensor = sensor
        self._slots = slots
        self._door: dict[int, bool] = dict.fromkeys(range(1, slots + 1), False)
        self._changed: dict[int, asyncio.Event] = {s: asyncio.Event() for s in self._door}
        self._timers: dict[int, asyncio.Task[None]] = {}
        self._events: asyncio.Queue[DoorEvent] = asyncio.Queue()
        self._running = False
        self._failure: DeviceError | None = None
        self._wake = asyncio.Event()
        self._detail = "not started"
        self._left_open: set[int] = set()

    @property
    def slots(self) -> int:
        return self._slots

    @property
    def has_sensor(self) -> bool:
        return self.sensor is not None

    @property
    def driver(self) -> str:
        if self.sensor is None or self.sensor.driver == self.relay.driver:
            return self.relay.driver
        return f"{self.relay.driver}+{self.sensor.driver}"

    def status(self) -> DeviceStatus:
        present, detail = self.relay.present()
        ok = present and self._running and self._failure is None
        if self._failure is not None:
            detail = str(self._failure)
        elif present and not self._running:
            detail = self._detail
        elif self._left_open:
            ok = False
            detail = "left open: slot " + ", ".join(str(slot) for slot in sorted(self._left_open))
        return DeviceStatus(DeviceKind.RELEASE, self.driver, present=present, ok=ok, detail=detail)

    # -- running --------------------------------------------------------------------------

    async def run(self, emit: DoorEventSink, ready: Callable[[], None] | None = None) -> None:
        self._failure = None
        try:
            await self.relay.open()  # every channel off: nothing stays unlocked after a crash
            if self.sensor is not None:
                await self.sensor.open()
                for slot in self._door:
                    self._door[slot] = await self.sensor.read(slot)
            self._running = True
            self._detail = "running"
            if ready is not None:
                ready()
            watcher = (
                asyncio.create_task(self.sensor.watch(self._sensor_changed))
                if self.sensor is not None
                else None
            )
            try:
                await self._deliver(emit, watcher)
            finally:
                if watcher is not None:
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError, DeviceError):
                        await watcher
        finally:
            self._running = False
            self._detail = "stopped"
            for task in list(self._timers.values()):
                task.cancel()
            self._timers.clear()
            await self._all_off()

    async def _deliver(self, emit: DoorEventSink, watcher: asyncio.Task[None] | None) -> None:
        if watcher is not None:
            watcher.add_done_callback(lambda _t: self._wake.set())
        while True:
            while not self._events.empty():
                await emit(self._events.get_nowait())
            if self._failure is not None:
                raise self._failure
            if watcher is not None and watcher.done():
                error = None if watcher.cancelled() else watcher.exception()
                if isinstance(error, DeviceError):
                    raise error
                raise DeviceError(f"the door sensor stopped: {error!r}")
            self._wake.clear()
            if self._events.empty():
                await self._wake.wait()

    async def _all_off(self) -> None:
        for slot in self._door:
            try:
                await self.relay.set(slot, False)
            except DeviceError as exc:
                log.error("could not relock slot %d: %s", slot, exc)
                break

    def _sensor_changed(self, slot: int, is_open: bool) -> None:
        if slot not in self._door or self._door[slot] == is_open:
            return
        self._door[slot] = is_open
        self._changed[slot].set()

    def _post(self, slot: int, kind: DoorEventKind) -> None:
        if kind is DoorEventKind.LEFT_OPEN:
            self._left_open.add(slot)
        elif kind is DoorEventKind.CLOSED:
            self._left_open.discard(slot)
        self._events.put_nowait(DoorEvent(slot, kind, time.monotonic()))
        self._wake.set()

    # -- commands -------------------------------------------------------------------------

    def _check_slot(self, slot: int) -> None:
        if not 1 <= slot <= self._slots:
            raise ValueError(f"slot {slot} does not exist (this device has 1-{self._slots})")

    async def release(self, slot: int, *, open_within_s: float, left_open_s: float) -> None:
        self._check_slot(slot)
        if not self._running:
            raise DeviceError("the release device is not running")
        if slot in self._timers:
            raise DeviceError(f"slot {slot} is already being released")
        await self.relay.set(slot, True)
        if self.sensor is not None:
            self.sensor.lock_energised(slot)
        task = asyncio.create_task(self._follow(slot, open_within_s, left_open_s))
        self._timers[slot] = task
        task.add_done_callback(lambda _t: self._timers.pop(slot, None))

    async def relock(self, slot: int) -> None:
        self._check_slot(slot)
        timer = self._timers.pop(slot, None)
        if timer is not None:
            timer.cancel()
        await self.relay.set(slot, False)

    async def door_open(self, slot: int) -> bool | None:
        self._check_slot(slot)
        if self.sensor is None:
            return None
        return self._door[slot] if self._running else await self.sensor.read(slot)

    async def close(self) -> None:
        for task in list(self._timers.values()):
            task.cancel()
        await self._all_off()
        await self.relay.close()
        if self.sensor is not None:
            await self.sensor.close()

    # -- the door's timing ----------------------------------------------------------------

    async def _follow(self, slot: int, open_within_s: float, left_open_s: float) -> None:
        try:
            if self.sensor is None:
                await asyncio.sleep(open_within_s)
                await self.relay.set(slot, False)
                self._post(slot, DoorEventKind.PULSED)
                return
            opened = await self._door_becomes(slot, True, open_within_s)
            await self.relay.set(slot, False)
            if not opened:
                self._post(slot, DoorEventKind.NOT_OPENED)
                return
            self._post(slot, DoorEventKind.OPENED)
            if not await self._door_becomes(slot, False, left_open_s):
                self._post(slot, DoorEventKind.LEFT_OPEN)
                await self._door_becomes(slot, False, None)
            self._post(slot, DoorEventKind.CLOSED)
        except DeviceError as exc:
            # A lock that cannot be switched off is the device failing: run() raises it, and
            # its restart switches every channel off again.
            self._failure = exc
            self._wake.set()

    async def _door_becomes(self, slot: int, is_open: bool, within_s: float | None) -> bool:
        changed = self._changed[slot]
        deadline = None if within_s is None else asyncio.get_running_loop().time() + within_s
        while self._door[slot] != is_open:
            changed.clear()
            if deadline is None:
                await changed.wait()
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await changed.wait()
        return True
