"""`cmd/op`: verified operations commands become jobs with committed states and replies.

A command is `accepted` in the inbox transaction that claims its envelope id (the reply
commits with it), then runs on the loop: `in_progress` for long steps, and one final state,
`succeeded`, `failed`, `rejected` or `timed_out`, each committed with its reply. A second
envelope carrying a known request id gets the stored state back and runs nothing. Commands
that could disturb a shopper's payment (restart, drawer, door) are interlocked: refused while
a payment is open. A command interrupted by a crash is not run again at start (a reprint or a
drawer kick must not repeat by surprise): it ends `failed` with that reason, except a restart,
which the restart itself has carried out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from datetime import datetime

from edged.contract.bodies import BodyError, OpState, dump_body, envelope_body
from edged.contract.envelope import Envelope, parse_rfc3339
from edged.link.downlink import DownlinkDelivery, DownlinkRejected, HandlerRejected
from edged.services.ops.requests import OpRecord, OpRequests
from edged.services.ops.table import OpFailed, OpRefused, OpSpec, OpTable, OpTimedOut, UnknownOp
from edged.store.database import Statements, Store, Transaction

log = logging.getLogger("edged.ops")

REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
INTERLOCK_REASON = "refused: a payment is open; try again when the kiosk is idle"


class _Progress:
    def __init__(self, service: OpsService, record: OpRecord) -> None:
        self._service = service
        self.record = record
        self.expires_at: datetime | None = (
            parse_rfc3339(record.expires_at) if record.expires_at else None
        )

    async def in_progress(self, note: str = "") -> None:
        if self.record.state is OpState.IN_PROGRESS and self.record.reason == note:
            return
        self.record = await self._service.move(self.record, OpState.IN_PROGRESS, note)


class OpsService:
    def __init__(
        self, store: Store, requests: OpRequests, table: OpTable, payment_open: Callable[[], bool]
    ) -> None:
        self._store = store
        self._requests = requests
        self.table = table
        self._payment_open = payment_open
        self._running: set[asyncio.Task[None]] = set()

    async def recover(self) -> None:
        """End the commands a crash or a restart interrupted, once, at start."""
        async with self._store.transaction() as tx:
            await tx.run(self._recover_now)

    def _recover_now(self, s: Statements) -> None:
        for record in self._requests.open_requests(s):
            if record.op == "op.restart":
                self._requests.move(s, record, OpState.SUCCEEDED, "restarted")
            else:
                self._requests.move(
                    s, record, OpState.FAILED, "interrupted by a restart; not run again"
                )

    async def handle_downlink(
        self, envelope: Envelope, tx: Transaction, delivery: DownlinkDelivery
    ) -> None:
        try:
            spec = self.table.lookup(envelope.type)
            request = envelope_body(envelope, spec.type_name, spec.model)
        except (UnknownOp, BodyError) as exc:
            raise HandlerRejected(str(exc)) from None
        route = delivery.reply_route(request.request_id)

        def accept(s: Statements) -> None:
            stored = self._requests.load(s, request.request_id)
            if stored is not None:
                self._requests.reply(s, stored)  # the same request again: its stored state
                return
            refused = spec.interlocked and self._payment_open()
            record = self._requests.create(
                s,
                request_id=request.request_id,
                op=spec.type_name,
                msg_id=envelope.id,
                body=dump_body(request),
                route=route,
                expires_at=envelope.exp,
                state=OpState.REJECTED if refused else OpState.ACCEPTED,
                reason=INTERLOCK_REASON if refused else "",
            )
            if not refused:
                s.after.append(lambda: self._start(spec, record))

        await tx.run(accept)

    async def handle_refused(
        self,
        envelope: Envelope,
        refusal: DownlinkRejected,
        tx: Transaction,
        delivery: DownlinkDelivery,
    ) -> None:
        """Answer a refused command when it names a request id: the sender waits for it.

        Replayed: the stored reply again. Expired (signed, so authentic): `timed_out`, stored,
        nothing run. Anything else (unsigned, forged, unknown command, bad arguments):
        `rejected` with the reason; nothing is stored for it, since it may not be authentic.
        """
        request_id = envelope.body.get("request_id")
        if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
            return
        route = delivery.reply_route(request_id)
        reason = f"{refusal.reason}: {refusal.detail}" if refusal.detail else refusal.reason

        def answer(s: Statements) -> None:
            stored = self._requests.load(s, request_id)
            if stored is not None:
                self._requests.reply(s, stored)
                return
            if refusal.reason == "replayed":
                return  # not one of ours (a typed handler's, op.refund): its owner answered
            authentic = refusal.reason == "expired"
            if authentic:
                self._requests.create(
                    s,
                    request_id=request_id,
                    op=envelope.type[:64],
                    msg_id=envelope.id,
                    body=envelope.body,
                    route=route,
                    expires_at=envelope.exp,
                    state=OpState.TIMED_OUT,
                    reason=f"expired before it started ({envelope.exp})",
                )
                return
            self._requests.reply(
                s,
                OpRecord(
                    request_id,
                    envelope.type[:64],
                    OpState.REJECTED,
                    reason[:500],
                    {},
                    {},
                    route,
                    None,
                ),
            )

        await tx.run(answer)

    def _start(self, spec: OpSpec, record: OpRecord) -> None:
        task = asyncio.get_running_loop().create_task(
            self._run(spec, record), name=f"op:{record.request_id}"
        )
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, spec: OpSpec, record: OpRecord) -> None:
        progress = _Progress(self, record)
        try:
            request = spec.model.model_validate(record.body)
            result = await spec.handler(request, progress)
        except OpRefused as exc:
            await self.move(progress.record, OpState.REJECTED, str(exc))
        except OpTimedOut as exc:
            await self.move(progress.record, OpState.TIMED_OUT, str(exc))
        except OpFailed as exc:
            await self.move(progress.record, OpState.FAILED, str(exc))
        except asyncio.CancelledError:
            raise  # stopping: the next start ends it as interrupted
        except Exception as exc:
            log.exception("operations command failed", extra={"request_id": record.request_id})
            await self.move(
                progress.record, OpState.FAILED, f"internal error: {type(exc).__name__}"
            )
        else:
            await self.move(progress.record, OpState.SUCCEEDED, "", result)

    async def move(
        self,
        record: OpRecord,
        state: OpState,
        reason: str = "",
        result: dict[str, object] | None = None,
    ) -> OpRecord:
        async with self._store.transaction() as tx:
            moved = await tx.run(lambda s: self._requests.move(s, record, state, reason, result))
        log.info(
            "operations command",
            extra={
                "request_id": record.request_id,
                "op": record.op,
                "state": state.value,
                "reason": reason,
            },
        )
        return moved

    async def close(self) -> None:
        for task in list(self._running):
            task.cancel()
        for task in list(self._running):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def status(self) -> dict[str, object]:
        rows = await self._store.fetchall(
            "SELECT state, COUNT(*) FROM op_requests GROUP BY state ORDER BY state"
        )
        return {"commands": self.table.names(), "requests": {r[0]: r[1] for r in rows}}
