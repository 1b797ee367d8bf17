"""The payments engine: queries, reverses, closes and parks each open payment on time.

One supervised task sleeps until the next due payment (or a wake-up), then applies the state
machine's step to each due row in its own transaction. A store that cannot write makes it
wait with back-off; nothing is written meanwhile.
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
from edged.services.payments.protocol import PaymentMethod
from edged.services.payments.records import _load
from edged.services.payments.requests import RETRY_MAX_S
from edged.services.payments.states import PayState, Step, on_due, on_stuck
from edged.store import StoreUnwritable

log = logging.getLogger("edged.payments")

MAX_IDLE_WAIT_S = 60.0


class PaymentEngine(PaymentEffects):
    def _store_trouble(self, reason: str) -> None:
        if not reason:
            self._wake.set()  # the disk takes writes again: act on what is due now

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
                step = self._due_step(row, now)
                if step is None:
                    continue
                step = await self._apply(tx, row, step, now)
            await self._after_commit([(trade_no, row["sale_id"], step)])
        upcoming = await self._store.fetchone(
            "SELECT MIN(next_at) FROM payments WHERE next_at IS NOT NULL"
        )
        if upcoming is None or upcoming[0] is None:
            return MAX_IDLE_WAIT_S
        delta = (parse_rfc3339(upcoming[0]) - self._store.clock.now()).total_seconds()
        return min(MAX_IDLE_WAIT_S, max(0.01, delta))

    def _due_step(self, row: Any, now: datetime) -> Step | None:
        """What a due payment does now: a cancel unconfirmed past the reverse timeout parks
        it; anything else is the state machine's due step."""
        state = PayState(row["state"])
        started = row["stage_started_at"]
        if state in (PayState.REVERSING, PayState.CLOSING) and started:
            waited = (now - parse_rfc3339(started)).total_seconds()
            if waited >= self._config.reverse_timeout_s:
                log.error(
                    "payment parked in doubt: the backend does not confirm the cancel",
                    extra={"trade_no": row["trade_no"], "waited_s": round(waited)},
                )
                return on_stuck(state)
        deadline = parse_rfc3339(row["deadline_at"]) if row["deadline_at"] else None
        native = row["method"] == PaymentMethod.NATIVE_QR.value
        return on_due(state, now, deadline, native=native)
