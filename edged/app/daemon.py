"""The composition root: builds every part from the validated config and runs them.

Nothing else constructs long-lived objects; each part receives what it needs here, so the
wiring of the whole daemon reads top to bottom in `_start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from edged import __version__
from edged.app.boot_record import BootRecord
from edged.cloudsim.embedded import start_beside_daemon
from edged.cloudsim.keys import with_backend_keys
from edged.config import DaemonConfig
from edged.contract.ids import new_id
from edged.contract.topics import DeviceTopics
from edged.control.server import ControlServer
from edged.link.assembly import start_link
from edged.link.downlink import DownlinkRouter
from edged.link.service import Link
from edged.runtime.backoff import Backoff
from edged.runtime.clock import Clock, SystemClock
from edged.runtime.heap import freeze_startup_heap
from edged.runtime.supervisor import CoreTaskFailed, Role, Supervisor
from edged.runtime.systemd import SystemdNotifier
from edged.services.checkout.assembly import CheckoutParts, build_checkout
from edged.services.payments.assembly import build_payments
from edged.services.payments.service import PaymentsService
from edged.store import Store, StoreError
from edged.store.inbox import Inbox
from edged.store.maintenance import StoreMaintenance
from edged.store.outbox import Outbox
from hal.factory import Devices, build_devices
from hal.scanner.protocol import CodeReader, Scan

log = logging.getLogger("edged.daemon")

StatusProvider = Callable[[], Awaitable[dict[str, Any]]]
ScanHandler = Callable[[Scan], Awaitable[None]]
Closer = Callable[[], Awaitable[None]]

EXIT_OK = 0
EXIT_FAILED = 1
STOP_GRACE_S = 1.5
"""Tasks get this long to finish after SIGTERM; systemd's own stop timeout is longer."""


class Daemon:
    def __init__(
        self,
        config: DaemonConfig,
        *,
        clock: Clock | None = None,
        notifier: SystemdNotifier | None = None,
    ) -> None:
        self.config = config
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
        self.store: Store
        self.outbox: Outbox
        self.inbox: Inbox
        self.devices: Devices
        self.downlink: DownlinkRouter
        """Services call `daemon.downlink.register(Downlink.X, handler)` while starting."""
        self.link: Link
        self.checkout: CheckoutParts
        self.payments: PaymentsService

    # -- extension points used by the wiring below --------------------------------------

    def add_status(self, section: str, provider: StatusProvider) -> None:
        self._status[section] = provider

    def on_scan(self, handler: ScanHandler) -> None:
        self._scan_handlers.append(handler)

    def on_close(self, closer: Closer) -> None:
        """Closers run in reverse order of registration after the tasks stopped."""
        self._closers.append(closer)

    def request_stop(self) -> None:
        self._stop.set()

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        try:
            try:
                await self._start()
            except (StoreError, OSError) as exc:
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
        code = EXIT_OK
        if fatal.done() and isinstance(fatal.exception(), CoreTaskFailed):
            log.error("stopping: a core task failed", extra={"reason": str(fatal.exception())})
            code = EXIT_FAILED
        stop.cancel()
        fatal.cancel()
        await self._shutdown()
        return code

    async def _start(self) -> None:
        cfg = self.config = with_backend_keys(self.config)
        cfg.paths.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = await Store.open(cfg.paths.data_dir / "edged.db", self.clock)
        self.on_close(self.store.close)
        self.outbox = Outbox(self.store, self.topics)
        self.inbox = Inbox(self.store)
        boot = BootRecord(self.store, self.outbox, self.boot_id, __version__)
        await boot.record_start()
        self.on_close(boot.record_stop)
        maintenance = StoreMaintenance(self.store, self.outbox, cfg.store, cfg.link.retention_hours)
        self.supervisor.start("store", maintenance.run, Role.CORE)
        self.add_status("store", maintenance.status)
        self.downlink, self.link = await start_link(self)
        await start_beside_daemon(
            cfg, self.link.settings.host, self.link.settings.port, self.on_close
        )

        self.devices = build_devices(
            cfg.scanner, cfg.camera, cfg.printer, cfg.display, cfg.paths.data_dir, backoff=Backoff
        )
        self.on_close(self.devices.printer.close)
        self.on_close(self.devices.display.close)
        self.supervisor.start("scanner", self._reader_task(self.devices.scanner), Role.DEVICE)
        if self.devices.camera is not None:
            self.supervisor.start("camera", self._reader_task(self.devices.camera), Role.DEVICE)

        self.checkout = await build_checkout(
            cfg,
            self.store,
            self.outbox,
            self.devices,
            self.control,
            self.downlink,
            sales_allowed=lambda: maintenance.sales_allowed,
        )
        self.on_scan(self.checkout.checkout.handle_scan)
        self.add_status("checkout", self.checkout.checkout.status)
        self.add_status("stock_updates", self.checkout.stock_updates.status)
        self.on_close(self.checkout.checkout.close)
        self.payments = await build_payments(
            cfg,
            self.store,
            self.outbox,
            self.checkout.checkout,
            self.downlink,
            self.supervisor,
            self.add_status,
        )
        self.checkout.start(self.supervisor)

        self.control.register("status", self._status_command)
        await self.control.start()
        self.on_close(self.control.stop)
        self.downlink.ready()
        if self.notifier.watchdog_interval_s is not None:
            self.supervisor.start(
                "watchdog", lambda: self.notifier.watchdog(self.supervisor.healthy), Role.CORE
            )

    async def _shutdown(self) -> None:
        self.notifier.stopping()
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

    def _reader_task(self, reader: CodeReader) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await reader.run(self._dispatch_scan)

        return run

    async def _dispatch_scan(self, scan: Scan) -> None:
        for handler in self._scan_handlers:
            await handler(scan)

    async def _status_command(self, _args: dict[str, Any]) -> dict[str, Any]:
        status: dict[str, Any] = {
            "device": {"site": self.topics.site, "id": self.topics.device},
            "version": __version__,
            "boot_id": self.boot_id,
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "clock_synced": self.clock.synced(),
            "tasks": [asdict(h) for h in self.supervisor.health()],
            "devices": [asdict(status) for status in self.devices.statuses()],
        }
        for section, provider in self._status.items():
            status[section] = await provider()
        return status
