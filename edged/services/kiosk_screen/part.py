"""The kiosk screen as one part of the daemon: the feed, the display it stands in, the server.

`setup` returns the display checkout must show its views on (the pole display behind the
page's feed). The server runs as a device task: a busy port is retried with backoff and
reported, never a reason to stop selling.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from edged.config.models import DaemonConfig
from edged.control.server import ControlServer
from edged.runtime.clock import Clock
from edged.runtime.supervisor import Role, Supervisor
from edged.services.kiosk_screen import page_state
from edged.services.kiosk_screen.auth import TechnicianGate
from edged.services.kiosk_screen.feed import ScreenDisplay, ScreenFeed
from edged.services.kiosk_screen.recent_logs import RecentLogs
from edged.services.kiosk_screen.server import ScreenServer, load_assets
from edged.services.kiosk_screen.tech_view import TechView
from edged.store import Store
from hal.display.protocol import Display

log = logging.getLogger("edged.screen")

SALES_WATCH_S = 0.25
"""How often the page's "out of service" follows the daemon's sales-stopped state."""

Closer = Callable[[], Awaitable[None]]


@dataclass
class KioskScreen:
    display: Display
    """Give this to checkout in place of the customer display."""
    feed: ScreenFeed
    server: ScreenServer
    url: str | None = None

    async def status(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "seq": self.feed.seq,
            "technician_page": self.server.gate is not None,
        }


async def setup(
    config: DaemonConfig,
    *,
    clock: Clock,
    store: Store,
    control: ControlServer,
    supervisor: Supervisor,
    on_close: Callable[[Closer], None],
    add_status: Callable[[str, Callable[[], Awaitable[dict[str, Any]]]], None],
    boot_id: str,
    display: Display,
    sales_allowed: Callable[[], bool],
) -> KioskScreen:
    cfg = config.screen
    feed = ScreenFeed(boot_id, page_state.render)
    token = config.security.technician_token
    gate = None if token is None else TechnicianGate(token.get_secret_value(), clock)
    logs = RecentLogs()
    logs.attach()
    on_close(logs.detach)
    tech = TechView(config, control, store, logs)
    server = ScreenServer(
        feed=feed,
        control=control,
        gate=gate,
        tech_snapshot=tech.snapshot,
        assets=load_assets(),
        language=cfg.language,
        secure=cfg.tls is not None,
    )
    screen = KioskScreen(ScreenDisplay(feed, display), feed, server)
    context = None
    if cfg.tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cfg.tls.cert_file, cfg.tls.key_file)

    async def serve() -> None:
        port = await server.start(cfg.host, cfg.port, context)
        scheme = "https" if context is not None else "http"
        screen.url = f"{scheme}://{cfg.host}:{port}/"
        log.info("screen listening", extra={"url": screen.url})
        try:
            while True:
                feed.set_out_of_service(not sales_allowed())
                await asyncio.sleep(SALES_WATCH_S)
        finally:
            screen.url = None
            await server.stop()

    supervisor.start("screen", serve, Role.DEVICE)
    add_status("screen", screen.status)
    return screen
