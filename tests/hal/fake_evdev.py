"""A stand-in for the `evdev` package, following its documented API.

InputDevice(path) opens a node (FileNotFoundError if absent), has .path .name .info
(bustype, vendor, product, version) .capabilities() .grab() (OSError EBUSY when another
process grabbed it) .ungrab() .close() .active_keys() and .async_read_loop(), an async
iterator of InputEvent(sec, usec, type, code, value) that raises OSError(ENODEV) when the
device is unplugged. list_devices() lists the plugged nodes.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import NamedTuple


class DeviceInfo(NamedTuple):
    bustype: int
    vendor: int
    product: int
    version: int


@dataclass
class InputEvent:
    sec: int
    usec: int
    type: int
    code: int
    value: int


_UNPLUGGED = object()


@dataclass
class Node:
    path: str
    name: str
    vendor: int
    product: int
    keys: list[int]
    queue: asyncio.Queue[object] = field(default_factory=asyncio.Queue)
    grabbed_by: object | None = None
    held: set[int] = field(default_factory=set)


class FakeEvdev:
    EV_SYN, EV_KEY = 0, 1
    SYN_REPORT, SYN_DROPPED = 0, 3

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.opened: list[InputDevice] = []
        self.scans_while_absent = 0
        """Attempts to open a node that is not plugged in: the driver looking for it."""

    # documented module API
    def list_devices(self) -> list[str]:
        return sorted(self.nodes)

    def InputDevice(self, path: str) -> InputDevice:
        if path not in self.nodes:
            self.scans_while_absent += 1
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        dev = InputDevice(self, self.nodes[path])
        self.opened.append(dev)
        return dev

    # test controls
    def plug(
        self,
        path: str,
        name: str = "Scanner",
        vendor: int = 0x05E0,
        product: int = 0x1200,
        keys: list[int] | None = None,
    ) -> Node:
        node = Node(path, name, vendor, product, keys if keys is not None else list(range(1, 100)))
        self.nodes[path] = node
        return node

    def unplug(self, path: str) -> None:
        node = self.nodes.pop(path)
        node.queue.put_nowait(_UNPLUGGED)

    def send(self, path: str, *events: tuple[int, int, int]) -> None:
        node = self.nodes[path]
        for type_, code, value in events:
            node.queue.put_nowait(InputEvent(0, 0, type_, code, value))


class InputDevice:
    def __init__(self, lib: FakeEvdev, node: Node) -> None:
        self._lib = lib
        self._node = node
        self.path = node.path
        self.name = node.name
        self.info = DeviceInfo(3, node.vendor, node.product, 1)
        self.closed = False
        self.grabbed = False

    def capabilities(self) -> dict[int, list[int]]:
        return {FakeEvdev.EV_SYN: [0], FakeEvdev.EV_KEY: list(self._node.keys)}

    def grab(self) -> None:
        if self._node.grabbed_by not in (None, self):
            raise OSError(errno.EBUSY, "Device or resource busy")
        self._node.grabbed_by = self
        self.grabbed = True

    def ungrab(self) -> None:
        if self.path not in self._lib.nodes:
            raise OSError(errno.ENODEV, "No such device")
        self._node.grabbed_by = None
        self.grabbed = False

    def close(self) -> None:
        self.closed = True

    def active_keys(self) -> list[int]:
        return sorted(self._node.held)

    async def async_read_loop(self) -> AsyncIterator[InputEvent]:
        while True:
            item = await self._node.queue.get()
            if item is _UNPLUGGED:
                raise OSError(errno.ENODEV, "No such device")
            assert isinstance(item, InputEvent)
            yield item
