"""What follows a committed step: the shopper's display, `busy()` and the engine's wake-up.

Nothing here runs before the step's transaction committed; a step made inside someone
else's transaction (a result in the inbox's) is announced only once it is durable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from edged.services.payments.records import BLOCKING_STATES, PaymentRecords, _marks
from edged.services.payments.states import FINAL, PARKED, Step

log = logging.getLogger("edged.payments")


class PaymentEffects(PaymentRecords):
    async def _after_commit(
        self, changes: Iterable[tuple[str, str, Step]], barrier: bool = False
    ) -> None:
        """Tell checkout's display and update `busy()`, once the change is durable.

        With `barrier`, the change was made in someone else's transaction (the inbox's): an
        empty transaction waits for it to commit, and a rolled-back change is not announced.
        """
        if barrier:
            async with self._store.transaction():
                pass
        for trade_no, sale_id, step in changes:
            if barrier:
                row = await self._store.fetchone(
                    "SELECT state FROM payments WHERE trade_no = ?", (trade_no,)
                )
                if row is None or row["state"] != step.state.value:
                    continue
            if step.state in FINAL or step.state in PARKED:
                self._closed(trade_no)
            if step.progress:
                await self._progress(sale_id, step.progress)
        self._wake.set()

    async def _progress(self, sale_id: str, message: str) -> None:
        try:
            await self._sink.progress(sale_id, message)
        except Exception as exc:
            log.warning("display update failed", extra={"reason": f"{type(exc).__name__}"})

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _opened(self, trade_no: str, sale_id: str) -> None:
        self._open[trade_no] = sale_id
        self._idle.clear()
        self._wake.set()

    def _closed(self, trade_no: str) -> None:
        self._open.pop(trade_no, None)
        if not self._open:
            self._idle.set()

    async def _refresh_open(self) -> None:
        rows = await self._store.fetchall(
            f"SELECT trade_no, sale_id FROM payments WHERE state IN ({_marks(BLOCKING_STATES)})",
            BLOCKING_STATES,
        )
        self._open = {row["trade_no"]: row["sale_id"] for row in rows}
        if self._open:
            self._idle.clear()
        else:
            self._idle.set()
