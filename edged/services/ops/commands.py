"""The operations commands the daemon itself carries out, each built from what it needs.

Each factory takes its dependencies explicitly and returns an `OpHandler`; the composition
root registers the ones whose parts exist (no printer, no `op.reprint`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from edged.contract.bodies import (
    DiagnosticsOp,
    DrawerOpenOp,
    LogLevelOp,
    ReprintOp,
    RestartOp,
    StockLevel,
    StockResyncOp,
    StockSnapshot,
    dump_body,
)
from edged.contract.envelope import rfc3339
from edged.contract.topics import Uplink
from edged.runtime.clock import Clock
from edged.runtime.logs import RecentLogLines
from edged.services.ops.table import OpFailed, OpHandler, OpProgress, OpRefused, OpTimedOut
from edged.services.printing.queue import PrintQueue, ReprintError
from edged.store.database import Statements, Store
from edged.store.outbox import Outbox
from hal.device import DeviceError
from hal.printer.protocol import Printer

log = logging.getLogger("edged.ops")

MAX_DIAGNOSTICS_BYTES = 48 * 1024
"""A reply must fit the broker's and the backend's message limits with room to spare."""
IDLE_POLL_S = 0.5


def reprint(queue: PrintQueue) -> OpHandler:
    async def handle(request: ReprintOp, _progress: OpProgress) -> dict[str, Any]:
        try:
            job_id = await queue.reprint(request.sale_id)
        except ReprintError as exc:
            raise OpFailed(str(exc)) from None
        return {"print_job": job_id, "sale_id": request.sale_id}

    return handle


def drawer_open(printer: Printer) -> OpHandler:
    """Registered interlocked: refused while a payment is open."""

    async def handle(_request: DrawerOpenOp, _progress: OpProgress) -> dict[str, Any]:
        try:
            await printer.open_drawer()
        except DeviceError as exc:
            raise OpFailed(f"the drawer did not open: {exc}") from None
        return {"drawer": "opened"}

    return handle


def diagnostics(status: Callable[[], Awaitable[dict[str, Any]]], logs: RecentLogLines) -> OpHandler:
    async def handle(request: DiagnosticsOp, _progress: OpProgress) -> dict[str, Any]:
        report: dict[str, Any] = {"status": await status(), "log": []}
        lines = logs.lines(request.log_lines)
        budget = MAX_DIAGNOSTICS_BYTES - len(json.dumps(report, default=str).encode())
        kept: list[str] = []
        for line in reversed(lines):  # newest first, until the reply is full
            budget -= len(line.encode()) + 4
            if budget < 0:
                report["log_truncated"] = True
                break
            kept.append(line)
        report["log"] = list(reversed(kept))
        plain: dict[str, Any] = json.loads(json.dumps(report, default=str))  # JSON values only
        return plain

    return handle


def stock_resync(
    store: Store, outbox: Outbox, levels: Callable[[Statements], list[StockLevel]]
) -> OpHandler:
    async def handle(request: StockResyncOp, progress: OpProgress) -> dict[str, Any]:
        await progress.in_progress("sending the catalog")

        def send(s: Statements) -> int:
            items = levels(s)
            pages = max(1, math.ceil(len(items) / request.page_size))
            for page in range(pages):
                chunk = items[page * request.page_size : (page + 1) * request.page_size]
                body = StockSnapshot(
                    request_id=request.request_id, page=page + 1, pages=pages, items=chunk
                )
                outbox.write(s, Uplink.STOCK, "stock.snapshot", dump_body(body))
            return len(items)

        async with store.transaction() as tx:
            products = await tx.run(send)
        pages = max(1, math.ceil(products / request.page_size))
        return {"products": products, "pages": pages}

    return handle


class LogLevels:
    """The root logger's level, changed for a while by `op.log.level`, then put back."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._baseline = logging.getLogger().level
        self._revert: asyncio.TimerHandle | None = None

    def handler(self) -> OpHandler:
        async def handle(request: LogLevelOp, _progress: OpProgress) -> dict[str, Any]:
            self.set(request.level, request.expires_s)
            until = self._clock.now() + timedelta(seconds=request.expires_s)
            return {"level": request.level, "until": rfc3339(until)}

        return handle

    def set(self, level: str, for_s: float) -> None:
        if self._revert is not None:
            self._revert.cancel()
        logging.getLogger().setLevel(level.upper())
        self._revert = asyncio.get_running_loop().call_later(for_s, self.reset)
        log.warning("log level changed", extra={"level": level, "for_s": for_s})

    def reset(self) -> None:
        if self._revert is not None:
            self._revert.cancel()
            self._revert = None
        logging.getLogger().setLevel(self._baseline)

    async def close(self) -> None:
        self.reset()


def restart(
    clock: Clock,
    busy: Callable[[], bool],
    payment_open: Callable[[], bool],
    request_restart: Callable[[], None],
) -> OpHandler:
    """`idle` waits (deferred, `in_progress`) until no sale is open, at most until its expiry."""

    async def handle(request: RestartOp, progress: OpProgress) -> dict[str, Any]:
        if request.when == "now" and payment_open():
            raise OpRefused("refused: a payment is open; use when=idle to wait for it")
        if request.when == "idle" and busy():
            await progress.in_progress("deferred: waiting for the current sale to end")
            while busy():
                if progress.expires_at is not None and clock.now() >= progress.expires_at:
                    raise OpTimedOut("the kiosk stayed busy until the command expired")
                await asyncio.sleep(IDLE_POLL_S)
        await progress.in_progress("restarting")
        request_restart()
        await asyncio.Event().wait()  # the daemon stops around us; the next start ends it
        return {}

    return handle
