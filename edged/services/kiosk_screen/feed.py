"""The page's feed: what the screen shows now, and every change to it, numbered.

The feed is fed by the same views as the pole display: `ScreenDisplay` stands where the
customer display stands, updates the feed and passes each view on to the real display. A
page gets a snapshot (the whole state and its number) and then each change with the next
number; a page that sees a gap asks for a new snapshot, so it never shows a stale basket.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hal.device import DeviceStatus
from hal.display.protocol import Display
from hal.display.view import DisplayView

Listener = Callable[[str], None]


class ScreenFeed:
    def __init__(self, boot_id: str, render: Callable[[DisplayView], dict[str, Any]]) -> None:
        self._boot_id = boot_id
        self._render = render
        self._state: dict[str, Any] = {"view": None, "out_of_service": False}
        self._seq = 0
        self._listeners: set[Listener] = set()

    @property
    def seq(self) -> int:
        return self._seq

    @property
    def state(self) -> dict[str, Any]:
        return dict(self._state)

    def snapshot(self) -> str:
        return json.dumps(
            {"type": "snapshot", "boot": self._boot_id, "seq": self._seq, "state": self._state},
            ensure_ascii=False,
        )

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.add(listener)
        return lambda: self._listeners.discard(listener)

    def show(self, view: DisplayView) -> None:
        self._change({"view": self._render(view)})

    def set_out_of_service(self, stopped: bool) -> None:
        if self._state["out_of_service"] != stopped:
            self._change({"out_of_service": stopped})

    def _change(self, changes: dict[str, Any]) -> None:
        self._state.update(changes)
        self._seq += 1
        message = json.dumps(
            {"type": "change", "boot": self._boot_id, "seq": self._seq, "set": changes},
            ensure_ascii=False,
        )
        for listener in list(self._listeners):
            listener(message)


class ScreenDisplay:
    """A Display that feeds the page first (in memory, cannot fail), then the real display."""

    def __init__(self, feed: ScreenFeed, display: Display) -> None:
        self._feed = feed
        self._display = display

    def status(self) -> DeviceStatus:
        return self._display.status()

    async def show(self, view: DisplayView) -> None:
        self._feed.show(view)
        await self._display.show(view)

    async def close(self) -> None:
        await self._display.close()
