"""The one seam between the composition root and a service: a context in, a handle out.

Every service folder exposes `async def setup(ctx: PartContext, *, <its dependencies>)`
and returns the handle other parts may depend on. `ctx` carries infrastructure only; a
dependency on another service is an explicit keyword argument, so the graph is visible in
the composition root (`edged/app/daemon.py`), one line per part:

    printing = await printing.setup(ctx, printer=devices.printer)
    sales = await sales.setup(ctx, printing=printing)
    payments = await payments.setup(ctx, sales=sales)

Whoever creates a resource registers its cleanup (`ctx.on_close`), its tasks
(`ctx.supervisor.start`) and its status section (`ctx.add_status`) itself; the composition root
never does it on a service's behalf. Tasks started during setup begin once every part is set
up, so no task ever runs against a half-wired daemon (a print queue before its receipt
renderer, a scan before checkout listens).

A part that depends on something outside the daemon that may come later (a device, a
listening port) raises `NotReady` from its setup: the composition root retries that setup
with the supervisor's backoff and reports it, instead of failing the start. Any other
exception from a setup ends the start with one clear line and exit 1.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from edged.config import DaemonConfig
from edged.contract.topics import DeviceTopics
from edged.control.server import ControlServer
from edged.link.downlink import DownlinkRegistry
from edged.runtime.clock import Clock
from edged.runtime.supervisor import Role, Supervisor, TaskFactory, TaskHealth
from edged.store import Store
from edged.store.inbox import Inbox
from edged.store.outbox import Outbox
from hal.scanner.protocol import Scan

StatusProvider = Callable[[], Awaitable[dict[str, Any]]]
ScanHandler = Callable[[Scan], Awaitable[None]]
Closer = Callable[[], Awaitable[None]]
Reconfigure = Callable[[DaemonConfig], None]
"""Told the whole new config; takes what it needs from its section, synchronously."""


class NotReady(Exception):
    """Raised by a device-role part's setup: what it needs is not there yet; try again later.

    The message says what is missing ("port 8080 is in use", "no printer on /dev/usb/lp0").
    """


class PartSupervisor:
    """The supervisor as parts see it: tasks they start are held until every part is set up.

    `start` has the supervisor's signature. Before `release()` the task is remembered; after
    it (a part set up late, after `NotReady`), it starts at once.
    """

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        self._held: list[tuple[str, TaskFactory, Role]] | None = []

    def start(self, name: str, factory: TaskFactory, role: Role) -> None:
        if self._held is None:
            self._supervisor.start(name, factory, role)
        else:
            self._held.append((name, factory, role))

    def health(self) -> list[TaskHealth]:
        return self._supervisor.health()

    def release(self) -> None:
        held, self._held = self._held or [], None
        for name, factory, role in held:
            self._supervisor.start(name, factory, role)


@dataclass(frozen=True)
class PartContext:
    """What every part receives: infrastructure, never another service."""

    config: DaemonConfig
    clock: Clock
    topics: DeviceTopics
    store: Store
    outbox: Outbox
    inbox: Inbox
    downlink: DownlinkRegistry
    """`ctx.downlink.register(Downlink.X, handler)`: one handler per downlink kind."""
    control: ControlServer
    """`ctx.control.register("name", handler)`: a command of the local control socket."""
    supervisor: PartSupervisor
    """`ctx.supervisor.start(name, factory, Role.DEVICE)`: a device task restarts with
    backoff; a core task failing stops the daemon (systemd restarts it)."""
    on_close: Callable[[Closer], None] = field(repr=False)
    """Closers run in reverse order of registration after the tasks stopped."""
    add_status: Callable[[str, StatusProvider], None] = field(repr=False)
    """A section of `edged status`."""
    on_scan: Callable[[ScanHandler], None] = field(repr=False)
    """Every scan from scanner and camera alike."""
    on_reconfigure: Callable[[str, Reconfigure], None] = field(
        default=lambda _section, _apply: None, repr=False
    )
    """`ctx.on_reconfigure("checkout", apply)`: this part takes a new value of that config
    section while it runs; a remote config that changes only such sections is applied live,
    any other change rebuilds the daemon's parts."""
