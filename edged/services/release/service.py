"""The release service: goods leave only against a committed, paid fact, and only once.

A paid sale's `pending` release is written inside the very transaction that commits the
payment and the sale (`ReleaseOnPaid` wraps checkout's settlement). Once that commits, the
service moves it to `unlocked` in its own transaction and only then energises the relay;
the door's events (opened, closed, not opened in time, left open) each commit a state change
and a `txn.release` report in one transaction before the display says what to do.

After a restart: a `pending` release is unlocked only within `restart_window_s` of the
payment, else it ends `not_opened` and the sale is marked for refund (`refund_marks`); an
`unlocked` one is never unlocked again (the relay may have been energised): the door found
open continues as `opened`, otherwise it ends `failed` for staff to look at; an `opened` or
`left_open` one is watched by reading the sensor until the door closes.

Staff may release a door remotely (`op.door.unlock`): `unlock_for_request` commits the
request's `pending` release, then takes the same path (unlocked, the relay, the door's events),
never a second time for the same request and never with a refund mark. A request's release
left `pending` by a restart ends `failed` without an unlock: its command ended as interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from edged.contract.bodies import ReleaseReport, ReleaseState, dump_body
from edged.contract.envelope import parse_rfc3339
from edged.contract.topics import Uplink
from edged.services.payments.protocol import PaymentOutcome, Settlement, SettlementSink
from edged.services.release import messages as M
from edged.services.release import records
from edged.services.release.gate import DisplayGate
from edged.services.release.records import Release
from edged.store import Statements, Store
from edged.store.outbox import Outbox
from hal.device import DeviceError
from hal.display.protocol import Display, show_or_log
from hal.display.view import DisplayView
from hal.release.protocol import DoorEvent, DoorEventKind, ReleaseDevice

log = logging.getLogger("edged.release")

RELEASE_REPORT = "txn.release"
ORDER_RELEASE_REPORT = "order.release"
CLOCK_TOLERANCE_S = 5.0
"""A payment stamped up to this far in the future still counts as just now (clock steps)."""
WATCH_INTERVAL_S = 0.5
"""How often a door left open across a restart is read until it closes."""


class SlotBusy(Exception):
    """The slot is released already (a door still unlocked or open): nothing was written."""

    def __init__(self, release: Release) -> None:
        super().__init__(f"slot {release.slot} is already released (release {release.id})")
        self.release = release


@dataclass(frozen=True)
class DoorUnlock:
    """What came of an operations request's unlock: `energised` once the relay was switched,
    else `reason` says why not (the device's own words)."""

    release: Release
    energised: bool
    reason: str = ""


@dataclass(frozen=True)
class ReleaseSettings:
    door_slot: int
    open_within_s: float
    left_open_s: float
    restart_window_s: float


class ReleaseOnPaid:
    """Checkout's settlement sink with the release added: the `pending` release commits in
    the same transaction as the PAID sale, or not at all."""

    def __init__(self, inner: SettlementSink, service: ReleaseService) -> None:
        self._inner = inner
        self._service = service

    def settle(self, s: Statements, settlement: Settlement) -> None:
        self._inner.settle(s, settlement)
        if settlement.outcome is PaymentOutcome.PAID:
            self._service.sale_paid_now(s, settlement.sale_id)

    async def progress(self, sale_id: str, message: str) -> None:
        await self._inner.progress(sale_id, message)


class ReleaseService:
    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        device: ReleaseDevice,
        display: Display,
        settings: ReleaseSettings,
    ) -> None:
        if not 1 <= settings.door_slot <= device.slots:
            raise ValueError(
                f"vending.door_slot {settings.door_slot} is not a slot of the release device "
                f"(it has 1-{device.slots})"
            )
        self._store = store
        self._outbox = outbox
        self._device = device
        self._display = display
        self._settings = settings
        self._kick = asyncio.Event()
        self._in_hand: set[str] = set()
        """Requests whose unlock `unlock_for_request` carries out now (the loop leaves them)."""
        self._followed: set[int] = set()
        """Releases whose door this run of the device follows (others are watched by polling)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self.gate = DisplayGate(display)
        """The display as checkout should see it: its views wait while a door is released."""
        self.unlocks = 0
        self.last_view: DisplayView | None = None

    def wrap(self, sink: SettlementSink) -> ReleaseOnPaid:
        return ReleaseOnPaid(sink, self)

    @property
    def slots(self) -> int:
        return self._device.slots

    def order_collected_now(self, s: Statements, order_id: str, slot: int) -> None:
        """A redeemed order that opens a slot: its release, pending, in the redeeming
        transaction (reported on evt/order)."""
        release = records.create_pending_now(s, slot=slot, order_id=order_id)
        if release is None:
            return
        self._report_now(s, release)
        s.after.append(self._kick.set)

    # -- in the payment's transaction ------------------------------------------------------

    def sale_paid_now(self, s: Statements, sale_id: str) -> None:
        """The sale just became PAID in this transaction: its release, pending."""
        row = s.fetchone("SELECT state FROM sales WHERE id = ?", (sale_id,))
        if row is None or row["state"] != "paid":
            return
        release = records.create_pending_now(s, slot=self._settings.door_slot, sale_id=sale_id)
        if release is None:
            return  # it has one already: never a second release for the same sale
        self._report_now(s, release)
        s.after.append(self._kick.set)

    async def unlock_for_request(self, request_id: str, slot: int) -> DoorUnlock:
        """Release `slot` for an operations request: its `pending` release commits first, then
        the relay is energised, once. Raises SlotBusy (nothing written) when the slot is
        released already, ValueError for a slot the device does not have."""
        if not 1 <= slot <= self._device.slots:
            raise ValueError(
                f"slot {slot} does not exist; the release device has slots 1-{self.slots}"
            )
        self._in_hand.add(request_id)
        try:

            def create(s: Statements) -> tuple[Release, bool]:
                stored = records.load_for_request_now(s, request_id)
                if stored is not None:
                    return stored, False  # never a second release for the same request
                busy = records.active_on_slot_now(s, slot)
                if busy is not None:
                    raise SlotBusy(busy)
                release = records.create_pending_now(s, slot=slot, request_id=request_id)
                if release is None:
                    raise RuntimeError(f"no release row for request {request_id}")
                self._report_now(s, release)
                return release, True

            async with self._store.transaction() as tx:
                release, created = await tx.run(create)
            if not created:
                return DoorUnlock(release, False, f"already released ({release.state.value})")
            outcome = await self._unlock(release)
            if isinstance(outcome, Release):
                return DoorUnlock(outcome, True)
            if outcome is None:
                reason = f"slot {slot} was released for another sale meanwhile; not unlocked"
                await self._change(release, ReleaseState.FAILED, reason=reason, ends=True)
                return DoorUnlock(release, False, reason)
            return DoorUnlock(release, False, outcome)
        finally:
            self._in_hand.discard(request_id)

    # -- the supervised task ---------------------------------------------------------------

    async def run(self) -> None:
        """Run the device, settle what a restart left behind, then unlock paid releases."""
        ready = asyncio.Event()
        device = asyncio.create_task(self._device.run(self._on_event, ready.set))
        try:
            await _first_of(ready.wait(), device)
            self._followed.clear()
            await self._recover()
            self._kick.set()
            while True:
                self._kick.clear()
                await self._unlock_pending()
                waiting = await self._watch_unfollowed()
                timeout = WATCH_INTERVAL_S if waiting else None
                await _first_of(self._kick.wait(), device, within_s=timeout)
        finally:
            device.cancel()
            with contextlib.suppress(asyncio.CancelledError, DeviceError):
                await device

    async def _recover(self) -> None:
        """Releases this run did not start and that are not over: never unlock them again."""
        async with self._store.transaction() as tx:
            unlocked = await tx.fetchall(
                f"SELECT {records.COLUMNS} FROM releases WHERE state = ? AND ended_at IS NULL",
                (ReleaseState.UNLOCKED.value,),
            )
        for row in unlocked:
            release = records.release_from_row(row)
            is_open = await self._door_open(release.slot)
            if is_open:
                await self._change(release, ReleaseState.OPENED, reason="found open at restart")
            else:
                await self._change(
                    release,
                    ReleaseState.FAILED,
                    reason="edged stopped while the door was unlocked; staff must check",
                    ends=True,
                )
                log.error(
                    "release interrupted: was the door opened?",
                    extra={"release_id": release.id, "sale_id": release.sale_id},
                )

    async def _unlock_pending(self) -> None:
        async with self._store.transaction() as tx:
            pending = await tx.run(records.pending_now)
        for release in pending:
            if release.request_id is not None:
                if release.request_id not in self._in_hand:
                    await self._change(
                        release,
                        ReleaseState.FAILED,
                        reason="edged stopped before the unlock; not unlocked",
                        ends=True,
                    )
                continue  # unlock_for_request carries it out itself
            age = self._age_s(release.paid_at)
            if age is None or age > self._settings.restart_window_s:
                when = "unknown" if age is None else f"{age:.0f} s"
                await self._change(
                    release,
                    ReleaseState.NOT_OPENED,
                    reason=f"not unlocked: {when} after payment, the window is "
                    f"{self._settings.restart_window_s:.0f} s",
                    ends=True,
                    refund=True,
                )
                await self._show(M.NOT_OPENED, [M.ASK_STAFF], "error")
                continue
            await self._unlock(release)

    async def _unlock(self, release: Release) -> Release | str | None:
        """Claim the slot and energise the relay: the unlocked release, the reason it failed,
        or None when the slot is busy (the release stays pending)."""

        def claim(s: Statements) -> Release | None:
            if records.active_on_slot_now(s, release.slot) is not None:
                return None  # the slot is busy (a door still open): wait for it
            return self._move_now(s, release, ReleaseState.UNLOCKED)

        async with self._store.transaction() as tx:
            unlocked = await tx.run(claim)
        if unlocked is None:
            return None
        self._followed.add(release.id)  # before any event of this door can arrive
        self.gate.hold()
        try:
            await self._device.release(
                release.slot,
                open_within_s=self._settings.open_within_s,
                left_open_s=self._settings.left_open_s,
            )
        except (DeviceError, ValueError) as exc:
            self._followed.discard(release.id)
            self._ended()
            log.error("release failed", extra={"release_id": release.id, "reason": str(exc)[:200]})
            await self._change(
                unlocked, ReleaseState.FAILED, reason=str(exc)[:200], ends=True, refund=True
            )
            failed = M.NOT_RELEASED if release.request_id is None else M.COULD_NOT_OPEN
            await self._show(failed, [M.ASK_STAFF], "error")
            return str(exc)[:200]
        self.unlocks += 1
        log.info(
            "released",
            extra={
                "release_id": release.id,
                "sale_id": release.sale_id,
                "request_id": release.request_id,
                "slot": release.slot,
            },
        )
        await self._show(self._open_text(release), [M.CLOSE_DOOR], "ok")
        return unlocked

    async def _watch_unfollowed(self) -> bool:
        """Doors left open across a restart: read the sensor until they close."""
        rows = await self._store.fetchall(
            f"SELECT {records.COLUMNS} FROM releases WHERE ended_at IS NULL AND state IN (?, ?)",
            (ReleaseState.OPENED.value, ReleaseState.LEFT_OPEN.value),
        )
        waiting = False
        for row in rows:
            release = records.release_from_row(row)
            if release.id in self._followed:
                continue
            is_open = await self._door_open(release.slot)
            if not is_open:
                await self._change(release, ReleaseState.CLOSED, ends=True)
                continue
            waiting = True
            opened = self._age_s(release.opened_at) if release.opened_at else None
            if release.state is ReleaseState.OPENED and (
                opened is None or opened > self._settings.left_open_s
            ):
                await self._change(release, ReleaseState.LEFT_OPEN)
                await self._show(M.DOOR_LEFT_OPEN, [M.CLOSE_DOOR], "error")
        return waiting

    # -- door events -------------------------------------------------------------------------

    async def _on_event(self, event: DoorEvent) -> None:
        async with self._store.transaction() as tx:
            release = await tx.run(lambda s: records.active_on_slot_now(s, event.slot))
        if release is None or release.id not in self._followed:
            log.warning(
                "door event with no release in progress",
                extra={"slot": event.slot, "event": event.kind.value},
            )
            return
        kind = event.kind
        if kind is DoorEventKind.OPENED:
            await self._change(release, ReleaseState.OPENED)
            await self._show(self._open_text(release), [M.CLOSE_DOOR], "ok")
        elif kind is DoorEventKind.NOT_OPENED:
            await self._change(
                release,
                ReleaseState.NOT_OPENED,
                reason=f"not opened within {self._settings.open_within_s:.0f} s; relocked",
                ends=True,
                refund=True,
            )
            await self._show(M.NOT_OPENED, [M.ASK_STAFF], "warn")
        elif kind is DoorEventKind.LEFT_OPEN:
            await self._change(release, ReleaseState.LEFT_OPEN)
            log.warning("door left open", extra={"release_id": release.id, "slot": event.slot})
            await self._show(M.DOOR_LEFT_OPEN, [M.CLOSE_DOOR], "error")
        elif kind is DoorEventKind.CLOSED:
            await self._change(release, ReleaseState.CLOSED, ends=True)
            await self._show(M.THANK_YOU, [], "ok")
        elif kind is DoorEventKind.PULSED:
            await self._change(
                release,
                ReleaseState.UNLOCKED,
                reason="no door sensor: unlocked for "
                f"{self._settings.open_within_s:.0f} s, then locked again",
                ends=True,
            )
            await self._show(M.THANK_YOU, [], "ok")
        if kind in (DoorEventKind.NOT_OPENED, DoorEventKind.CLOSED, DoorEventKind.PULSED):
            self._followed.discard(release.id)
            self._ended()
        self._kick.set()  # a slot may have become free for a waiting release

    def _ended(self) -> None:
        """No door of this run is released any more: checkout may have the display back."""
        if not self._followed:
            self.gate.open_soon()

    # -- shared steps ------------------------------------------------------------------------

    async def _change(
        self,
        release: Release,
        to: ReleaseState,
        *,
        reason: str = "",
        ends: bool = False,
        refund: bool = False,
    ) -> Release | None:
        async with self._store.transaction() as tx:
            return await tx.run(
                lambda s: self._move_now(s, release, to, reason=reason, ends=ends, refund=refund)
            )

    def _move_now(
        self,
        s: Statements,
        release: Release,
        to: ReleaseState,
        *,
        reason: str = "",
        ends: bool = False,
        refund: bool = False,
    ) -> Release | None:
        """One state change, its refund mark and its report, in one transaction."""
        moved = records.move_now(s, release, to, reason=reason, ends=ends)
        if moved is None:
            return None
        marked = (
            refund and moved.sale_id is not None and records.mark_for_refund_now(s, moved.sale_id)
        )
        self._report_now(s, moved, refund_marked=marked)
        return moved

    def _report_now(self, s: Statements, release: Release, refund_marked: bool = False) -> None:
        body = ReleaseReport(
            release_id=release.id,
            sale_id=release.sale_id,
            order_id=release.order_id,
            request_id=release.request_id,
            slot=release.slot,
            state=release.state,
            reason=release.reason,
            refund_marked=refund_marked,
            at=s.now,
            clock_synced=self._store.clock.synced(),
        )
        if release.order_id is None:  # a sale's, or an operations request's
            self._outbox.write(s, Uplink.TXN, RELEASE_REPORT, dump_body(body))
        else:
            self._outbox.write(s, Uplink.ORDER, ORDER_RELEASE_REPORT, dump_body(body))

    async def _door_open(self, slot: int) -> bool | None:
        try:
            return await self._device.door_open(slot)
        except DeviceError as exc:
            log.warning("cannot read the door sensor", extra={"reason": str(exc)[:200]})
            return None

    def _age_s(self, stamp: str) -> float | None:
        """Seconds since `stamp` by the wall clock; None when the clock says it is the future."""
        age = (self._store.clock.now() - parse_rfc3339(stamp)).total_seconds()
        if age < -CLOCK_TOLERANCE_S:
            return None
        return max(0.0, age)

    def _open_text(self, release: Release) -> str:
        if self._device.slots == 1:
            return M.DOOR_OPEN
        return M.SLOT_OPEN.format(slot=release.slot)

    async def _show(self, headline: str, lines: list[str], tone: str) -> None:
        """The display failing never undoes a committed fact; it is reported and skipped."""
        view = DisplayView(headline=headline, lines=lines, tone=tone)
        self.last_view = view
        await show_or_log(self._display, view, log)

    # -- status --------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        # One statement, one snapshot: the active releases and the newest one agree.
        rows = await self._store.fetchall(
            "SELECT id, sale_id, order_id, request_id, slot, state, reason, paid_at, ended_at "
            "FROM releases "
            "WHERE ended_at IS NULL OR id = (SELECT MAX(id) FROM releases) ORDER BY id"
        )
        active = [row for row in rows if row["ended_at"] is None]
        last = rows[-1] if rows else None
        attention = await self._store.fetchall(
            "SELECT id, sale_id, order_id, request_id, slot, reason, ended_at FROM releases "
            "WHERE state = ? ORDER BY id DESC LIMIT 10",
            (ReleaseState.FAILED.value,),
        )
        marks = await self._store.fetchone(
            "SELECT COUNT(*) FROM refund_marks WHERE refund_no IS NULL"
        )
        left_open = [dict(row)["slot"] for row in active if row["state"] == "left_open"]
        return {
            "device": self._device.status().detail,
            "alarm": None
            if not left_open
            else "door left open: slot " + ", ".join(str(slot) for slot in left_open),
            "active": [dict(row) for row in active],
            "last": None if last is None else dict(last),
            "failed": [dict(row) for row in attention],
            "refund_marks_pending": int(marks[0]) if marks else 0,
            "unlocks_this_run": self.unlocks,
            "display": None if self.last_view is None else self.last_view.model_dump(),
        }


async def _first_of(
    waiting: Any, device: asyncio.Task[None], *, within_s: float | None = None
) -> None:
    """Wait for `waiting` (a coroutine) or the device task ending, whichever comes first; a
    device task that ended raises its error (the supervisor restarts this task)."""
    waiter = asyncio.ensure_future(waiting)
    try:
        await asyncio.wait({waiter, device}, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if device.done():
        error = None if device.cancelled() else device.exception()
        if error is not None:
            raise error
        raise DeviceError("the release device stopped")
