"""The composition root: builds every part from the validated config and runs them.

Nothing else constructs long-lived objects; each part receives what it needs here, so the
wiring of the whole daemon reads top to bottom in `_start`: the infrastructure (store, boot
record, devices, link), then one `setup(ctx, ...)` line per service (`edged/services/part.py`
is the seam). Lifecycle: start, serve until SIGTERM/SIGINT or a core task fails, then stop
the tasks (with a grace) and run the closers in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict
from typing import Any

from edged import __version__
from edged.app import door_unlock
from edged.app.boot_record import record_boot
from edged.app.health import DaemonHealth, LiveSections
from edged.cloudsim.embedded import start_beside_daemon
from edged.cloudsim.keys import with_backend_keys
from edged.config import DaemonConfig
from edged.contract.ids import new_id
from edged.contract.topics import DeviceTopics
from edged.control.server import ControlServer
from edged.link.assembly import start_link
from edged.runtime.backoff import Backoff
from edged.runtime.clock import Clock, SystemClock
from edged.runtime.heap import freeze_startup_heap
from edged.runtime.logs import RecentLogLines
from edged.runtime.supervisor import CoreTaskFailed, Role, Supervisor
from edged.runtime.systemd import SystemdNotifier
from edged.services import (
    checkout,
    fleet_config,
    kiosk_screen,
    ops,
    orders,
    payments,
    printing,
    refunds,
    release,
    sales,
    settlement,
    stock,
)
from edged.services.checkout.session import Phase
from edged.services.part import (
    Closer,
    PartContext,
    PartSupervisor,
    Reconfigure,
    ScanHandler,
    StatusProvider,
)
from edged.services.stock.updates import catalog_levels
from edged.store import Store, StoreError, StoreUnwritable
from edged.store.inbox import Inbox
from edged.store.maintenance import StoreMaintenance
from edged.store.outbox import Outbox
from hal.factory import Devices, build_devices
from hal.scanner.protocol import CodeReader, Scan

log = logging.getLogger("edged.daemon")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_RELOAD = 75
"""Returned to the CLI to build the daemon again in this process (remote config applied)."""
EXIT_RESTART = 76
"""Returned to the CLI to re-execute the process (`op.restart`)."""
STOP_GRACE_S = 1.5
"""Tasks get this long to finish after SIGTERM; systemd's own stop timeout is longer."""


class Daemon:
    def __init__(
        self,
        config: DaemonConfig,
        *,
        file_raw: Mapping[str, Any] | None = None,
        clock: Clock | None = None,
        notifier: SystemdNotifier | None = None,
    ) -> None:
        self.config = config
        self.file_raw: Mapping[str, Any] = (
            file_raw if file_raw is not None else config.model_dump(exclude_unset=True)
        )
        """The local file as read (with environment overrides): remote layers go over it."""
        self.clock = clock or SystemClock()
        self.notifier = notifier or SystemdNotifier()
        self.boot_id = new_id()
        self.topics = DeviceTopics(config.device.site, config.device.id)
        self.supervisor = Supervisor()
        self.control = ControlServer(config.paths.socket_path())
        self.started_at = time.monotonic()
        self._status: dict[str, StatusProvider] = {}
        self._scan_handlers: list[ScanHandler] = []
        self._closers: list[Closer] = []
        self._stop = asyncio.Event()
        self._exit_code = EXIT_OK
        self._live: dict[str, list[Reconfigure]] = {}
        self.logs = RecentLogLines()

    # -- extension points used by the wiring below --------------------------------------

    def add_status(self, section: str, provider: StatusProvider) -> None:
        self._status[section] = provider

    def on_scan(self, handler: ScanHandler) -> None:
        self._scan_handlers.append(handler)

    def on_reconfigure(self, section: str, apply: Reconfigure) -> None:
        self._live.setdefault(section, []).append(apply)

    def on_close(self, closer: Closer) -> None:
        """Closers run in reverse order of registration after the tasks stopped."""
        self._closers.append(closer)

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        """Stop every part and build them again in this process, with the config's new layers."""
        self._exit_code = EXIT_RELOAD
        self._stop.set()

    def request_restart(self) -> None:
        """Stop cleanly, then the CLI re-executes the process (`op.restart`)."""
        self._exit_code = EXIT_RESTART
        self._stop.set()

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        try:
            try:
                await self._start()
            except (StoreError, StoreUnwritable, OSError) as exc:
                # A disk too full to record the boot: say so; systemd retries the start.
                log.error("cannot start", extra={"reason": str(exc)})
                return EXIT_FAILED
            freeze_startup_heap()
            self.notifier.ready()
            log.info(
                "ready",
                extra={
                    "device": self.topics.root,
                    "version": __version__,
                    "boot_id": self.boot_id,
                    "startup_ms": round((time.monotonic() - self.started_at) * 1000, 1),
                },
            )
            return await self._serve()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            self.notifier.close()

    async def _serve(self) -> int:
        stop = asyncio.create_task(self._stop.wait())
        fatal = asyncio.create_task(self.supervisor.wait())
        await asyncio.wait({stop, fatal}, return_when=asyncio.FIRST_COMPLETED)
        code = self._exit_code
        if fatal.done() and isinstance(fatal.exception(), CoreTaskFailed):
            log.error("stopping: a core task failed", extra={"reason": str(fatal.exception())})
            code = EXIT_FAILED
        stop.cancel()
        fatal.cancel()
        await self._shutdown()
        return code

    async def _start(self) -> None:
        """Infrastructure first (store, devices, link), then one line per part, top to bottom.

        Dependencies between parts are the keyword arguments: payments settles with the sales
        ledger, checkout asks payments to collect and follows the ledger. Tasks the parts
        start run once every part is set up (`PartSupervisor.release`).
        """
        logging.getLogger().addHandler(self.logs)
        self.on_close(self._detach_logs)
        self.config.paths.data_dir.mkdir(parents=True, exist_ok=True)
        store = await Store.open(self.config.paths.data_dir / "edged.db", self.clock)
        self.on_close(store.close)
        outbox = Outbox(store, self.topics)
        inbox = Inbox(store)
        # The local file says where the store is; the store says which remote layers to run.
        start = await fleet_config.starting(store, outbox, self.file_raw, self.config)
        cfg = with_backend_keys(start.config)
        await record_boot(store, outbox, self.boot_id, __version__, self.on_close)
        maintenance = StoreMaintenance(store, outbox, cfg.store, cfg.link.retention_hours)
        self.supervisor.start("store", maintenance.run, Role.CORE)
        self.add_status("store", maintenance.status)
        devices = self._build_devices(cfg)
        downlink, link = await start_link(
            cfg,
            clock=self.clock,
            topics=self.topics,
            store=store,
            outbox=outbox,
            inbox=inbox,
            supervisor=self.supervisor,
            boot_id=self.boot_id,
            device_statuses=devices.statuses,
            on_close=self.on_close,
            add_status=self.add_status,
            maintenance=maintenance,
        )
        await start_beside_daemon(
            cfg, link.settings.host, link.settings.port, self.on_close, mqtt5=link.settings.mqtt5
        )

        parts = PartSupervisor(self.supervisor)
        ctx = PartContext(
            cfg, self.clock, self.topics, store, outbox, inbox, downlink, self.control, parts,
            on_close=self.on_close, add_status=self.add_status, on_scan=self.on_scan,
            on_reconfigure=self.on_reconfigure,
        )  # fmt: skip
        devices = await kiosk_screen.setup(
            ctx, devices=devices, boot_id=self.boot_id,
            sales_allowed=lambda: maintenance.sales_allowed,
        )  # fmt: skip
        print_queue = await printing.setup(ctx, printer=devices.printer)
        ledger = await sales.setup(ctx, printing=print_queue)
        releases = await release.setup(ctx, device=devices.release, display=devices.display)
        settles = ledger if releases is None else releases.wrap(ledger)
        collector = await payments.setup(ctx, sales=settles)
        # On a vending counter checkout's views wait while a door is released (releases.gate).
        shown = devices if releases is None else dataclasses.replace(devices, display=releases.gate)
        till = await checkout.setup(
            ctx, devices=shown, sales=ledger, payments=collector, printing=print_queue,
            sales_allowed=lambda: maintenance.sales_allowed,
        )  # fmt: skip
        await stock.setup(ctx)
        await orders.setup(ctx, display=devices.display, printing=print_queue, releases=releases)
        await refunds.setup(ctx, printing=print_queue)
        await settlement.setup(ctx, printing=print_queue)
        operations = await ops.setup(
            ctx, printing=print_queue, printer=devices.printer,
            status=functools.partial(self._status_command, devices, {}), logs=self.logs,
            stock_levels=catalog_levels, busy=lambda: till.phase is not Phase.IDLE,
            payment_open=collector.busy, request_restart=self.request_restart,
        )  # fmt: skip
        door_unlock.register(operations.table, releases)
        await fleet_config.setup(
            ctx, file_raw=self.file_raw, start=start,
            busy=lambda: collector.busy() or till.phase is Phase.PAYING,
            probe=DaemonHealth(link, self.supervisor, devices), request_reload=self.request_reload,
            live=LiveSections(self._live),
        )  # fmt: skip

        self._read_scans(parts, devices)
        self.control.register("status", functools.partial(self._status_command, devices))
        await self.control.start()
        self.on_close(self.control.stop)
        parts.release()
        downlink.ready()
        if self.notifier.watchdog_interval_s is not None:
            self.supervisor.start(
                "watchdog", lambda: self.notifier.watchdog(self.supervisor.healthy), Role.CORE
            )

    def _build_devices(self, cfg: DaemonConfig) -> Devices:
        devices = build_devices(
            cfg.scanner,
            cfg.camera,
            cfg.printer,
            cfg.display,
            cfg.paths.data_dir,
            backoff=Backoff,
            release=cfg.release,
        )
        self.on_close(devices.printer.close)
        self.on_close(devices.display.close)
        return devices

    async def _shutdown(self) -> None:
        if self._exit_code == EXIT_OK:
            self.notifier.stopping()
        else:
            self.notifier.reloading(
                "restarting" if self._exit_code == EXIT_RESTART else "reloading"
            )
        log.info("stopping")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.supervisor.stop(), STOP_GRACE_S)
        for closer in reversed(self._closers):
            try:
                await closer()
            except Exception as exc:
                log.warning("close failed", extra={"reason": f"{type(exc).__name__}: {exc}"})
        log.info("stopped")

    # -- wiring helpers -------------------------------------------------------------------

    async def _detach_logs(self) -> None:
        logging.getLogger().removeHandler(self.logs)

    def _read_scans(self, parts: PartSupervisor, devices: Devices) -> None:
        """Scanner and camera feed every part's scan handler; they restart with backoff."""
        parts.start("scanner", self._reader_task(devices.scanner), Role.DEVICE)
        if devices.camera is not None:
            parts.start("camera", self._reader_task(devices.camera), Role.DEVICE)

    def _reader_task(self, reader: CodeReader) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await reader.run(self._dispatch_scan)

        return run

    async def _dispatch_scan(self, scan: Scan) -> None:
        for handler in self._scan_handlers:
            await handler(scan)

    async def _status_command(self, devices: Devices, _args: dict[str, Any]) -> dict[str, Any]:
        status: dict[str, Any] = {
            "device": {"site": self.topics.site, "id": self.topics.device},
            "version": __version__,
            "boot_id": self.boot_id,
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "clock_synced": self.clock.synced(),
            "tasks": [asdict(h) for h in self.supervisor.health()],
            "devices": [asdict(status) for status in devices.statuses()],
        }
        for section, provider in self._status.items():
            status[section] = await provider()
        return status
