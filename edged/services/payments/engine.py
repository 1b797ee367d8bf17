"""The payments engine: queries, reverses and closes each open payment on time.

One supervised task sleeps until the next due payment (or a wake-up), then applies the state
machine's `on_due` step to each due row in its own transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from edged.contract.envelope import parse_rfc3339, rfc3339
from edged.runtime.backoff import Backoff
from edged.services.payments.effects import PaymentEffects
from edged.services.payments.records import _load
from edged.services.payments.requests import RETRY_MAX_S
from edged.services.payments.states import PayState, on_due
from edged.store import StoreUnwritable

log = logging.getLogger("edged.payments")

MAX_IDLE_WAIT_S = 60.0
MSG_STAFF = "Payment could not be confirmed: please ask staff for help"


class PaymentEngine(PaymentEffects):
    async def run(self) -> None:
        """Query, reverse and close on time; sleeps until the next due payment or a wake-up."""
        await self._refresh_open()
        store_backoff = Backoff(0.5, RETRY_MAX_S)
        while True:
            self._wake.clear()
            try:
                wait_s = await self.tick()
                store_backoff.reset()
            except StoreUnwritable as exc:
                # Nothing was written: the due payments stay due and are acted on once the
                # disk takes writes again. Money is untouched either way.
                wait_s = store_backoff.next_delay()
                log.error(
                    "payments wait for the store",
                    extra={"reason": exc.reason, "retry_in_s": round(wait_s, 2)},
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_s)

    async def tick(self) -> float:
        """One engine round: act on every due payment; returns seconds until the next one."""
        now = self._store.clock.now()
        due = await self._store.fetchall(
            "SELECT trade_no FROM payments WHERE next_at IS NOT NULL AND next_at <= ? "
            "ORDER BY next_at",
            (rfc3339(now),),
        )
        for item in due:
            trade_no = item["trade_no"]
            async with self._store.transaction() as tx:
                row = await _load(tx, trade_no)
                if row is None or row["next_at"] is None or row["next_at"] > tx.now:
                    continue
                deadline = parse_rfc3339(row["deadline_at"]) if row["deadline_at"] else None
                step = on_due(PayState(row["state"]), now, deadline)
                if step is None:
                    continue
                await self._apply(tx, row, step, now)
            await self._after_commit([(trade_no, row["sale_id"], step)])
            self._check_stuck(row, now)
        upcoming = await self._store.fetchone(
            "SELECT MIN(next_at) FROM payments WHERE next_at IS NOT NULL"
        )
        if upcoming is None or upcoming[0] is None:
            return MAX_IDLE_WAIT_S
        delta = (parse_rfc3339(upcoming[0]) - self._store.clock.now()).total_seconds()
        return min(MAX_IDLE_WAIT_S, max(0.01, delta))

    def _check_stuck(self, row: Any, now: datetime) -> None:
        """A reverse or close the backend never confirms: the kiosk stays blocked, staff help."""
        if (
            row["state"] not in (PayState.REVERSING, PayState.CLOSING)
            or not row["stage_started_at"]
        ):
            return
        waited = (now - parse_rfc3339(row["stage_started_at"])).total_seconds()
        if waited >= self._config.reverse_timeout_s and row["trade_no"] not in self._alarmed:
            self._alarmed.add(row["trade_no"])
            log.error(
                "payment unresolved: backend does not confirm the cancel",
                extra={"trade_no": row["trade_no"], "waited_s": round(waited)},
            )
            self._spawn(self._progress(row["sale_id"], MSG_STAFF))
