"""The kiosk screen as one part of the daemon: the feed, the display it stands in, the server.

`setup` hands back the devices with their display wrapped: checkout shows its views on it,
the pole display gets each view as before and the page's feed gets it too. The server runs
as a device task: a busy port is retried with backoff and reported, never a reason to stop
selling. With `[screen] enabled = false` nothing is imported and the devices come back as
they were, so a vending counter without a screen does not need the `screen` extra.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from edged.runtime.supervisor import Role
from edged.services.part import PartContext
from hal.factory import Devices

if TYPE_CHECKING:
    from edged.services.kiosk_screen.feed import ScreenFeed
    from edged.services.kiosk_screen.server import ScreenServer

log = logging.getLogger("edged.screen")

SALES_WATCH_S = 0.25
"""How often the page's "out of service" follows the daemon's sales-stopped state."""


@dataclass
class KioskScreen:
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
    ctx: PartContext,
    *,
    devices: Devices,
    boot_id: str,
    sales_allowed: Callable[[], bool],
) -> Devices:
    cfg = ctx.config.screen
    if not cfg.enabled:
        return devices
    # Imported only by a kiosk that has a screen: the web stack is the `screen` extra, and a
    # daemon without a screen should not pay for the rest at start either.
    from edged.services.kiosk_screen import page_state
    from edged.services.kiosk_screen.auth import TechnicianGate
    from edged.services.kiosk_screen.feed import ScreenDisplay, ScreenFeed
    from edged.services.kiosk_screen.recent_logs import RecentLogs
    from edged.services.kiosk_screen.server import ScreenServer, load_assets
    from edged.services.kiosk_screen.tech_view import TechView

    feed = ScreenFeed(boot_id, page_state.render)
    token = ctx.config.security.technician_token
    gate = None if token is None else TechnicianGate(token.get_secret_value(), ctx.clock)
    logs = RecentLogs()
    logs.attach()
    ctx.on_close(logs.detach)
    tech = TechView(ctx.config, ctx.control, ctx.store, logs)
    server = ScreenServer(
        feed=feed,
        control=ctx.control,
        gate=gate,
        tech_snapshot=tech.snapshot,
        assets=load_assets(),
        language=cfg.language,
        secure=cfg.tls is not None,
    )
    screen = KioskScreen(feed, server)
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

    ctx.supervisor.start("screen", serve, Role.DEVICE)
    ctx.add_status("screen", screen.status)
    return replace(devices, display=ScreenDisplay(feed, devices.display))
