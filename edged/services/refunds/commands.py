"""How a refund is asked for: the signed `op.refund` operations command and the technician.

`op.refund` runs inside the inbox transaction that claims the command's id: the refund (or
the refusal) and the `op.reply` on `rsp/{request_id}` commit together, so a replayed or
duplicated command (same envelope, or the same request id in a new one) refunds once and
answers the same. The technician's `refund.start` on the control socket needs the technician
token; a wrong one is answered after a growing delay.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

from pydantic import SecretStr

from edged.contract.bodies import (
    BodyError,
    OpReply,
    OpState,
    RefundCommand,
    RefundReason,
    dump_body,
    envelope_body,
)
from edged.contract.envelope import Envelope
from edged.contract.topics import Uplink
from edged.control.server import CommandError
from edged.link.downlink import DownlinkDelivery, HandlerRejected
from edged.services.refunds.service import (
    Origin,
    RefundAsk,
    RefundRefused,
    RefundsService,
    Started,
)
from edged.store import Statements, Transaction
from edged.store.outbox import Outbox

log = logging.getLogger("edged.refunds")

OP_REFUND = "op.refund"
WRONG_TOKEN_DELAY_S = 0.25
WRONG_TOKEN_MAX_DELAY_S = 8.0


class RefundOp:
    """The `op.refund` entry of the cmd/op dispatch table."""

    def __init__(self, refunds: RefundsService, outbox: Outbox) -> None:
        self._refunds = refunds
        self._outbox = outbox

    async def handle(self, envelope: Envelope, tx: Transaction, delivery: Any) -> None:
        try:
            command = envelope_body(envelope, OP_REFUND, RefundCommand)
        except BodyError as exc:
            log.warning(
                "refund command rejected", extra={"reason": str(exc), "msg_id": envelope.id}
            )
            raise HandlerRejected(str(exc)) from None
        ask = _ask(command, "ops")

        def start_and_reply(s: Statements) -> None:
            try:
                started = self._refunds.start_now(s, ask)
                reply = OpReply(
                    request_id=command.request_id,
                    op=OP_REFUND,
                    state=OpState.ACCEPTED,
                    reason=_detail(started),
                    result={"refund_no": started.refund_no},
                )
            except RefundRefused as exc:
                why = str(exc)
                reply = OpReply(
                    request_id=command.request_id, op=OP_REFUND, state=OpState.REJECTED, reason=why
                )
                s.after.append(
                    lambda: log.warning(
                        "refund command refused",
                        extra={"request_id": command.request_id, "reason": why},
                    )
                )
            route = (
                delivery.reply_route(command.request_id)
                if isinstance(delivery, DownlinkDelivery)
                else None
            )
            self._outbox.write(
                s,
                Uplink.RESPONSE,
                "op.reply",
                dump_body(reply),
                request_id=command.request_id,
                response=route,
            )
            s.after.append(self._refunds.wake)

        tx.defer(start_and_reply)


def _ask(command: RefundCommand, origin: Origin) -> RefundAsk:
    """The refund the command asks for, as the service takes it from either origin."""
    return RefundAsk(
        sale_id=command.sale_id,
        kind=command.kind,
        reason=command.reason,
        origin=origin,
        lines=tuple((line.line_no, line.quantity) for line in command.lines),
        amount_fen=command.amount_fen,
        request_id=command.request_id,
    )


def _detail(started: Started) -> str:
    if started.again:
        return f"already started: refund {started.refund_no} is {started.state}"
    return f"refund of {started.amount_fen} fen requested"


class TechnicianRefunds:
    """`refund.start` and `refund.list` on the control socket, behind the technician token."""

    def __init__(self, refunds: RefundsService, token: SecretStr | None) -> None:
        self._refunds = refunds
        self._token = token
        self._wrong = 0

    async def _check_token(self, args: dict[str, Any]) -> None:
        given = args.get("token")
        if self._token is None:
            raise CommandError("no technician token is configured ([security] technician_token)")
        expected = self._token.get_secret_value().encode()
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), expected):
            self._wrong += 1
            await asyncio.sleep(min(WRONG_TOKEN_MAX_DELAY_S, WRONG_TOKEN_DELAY_S * 2**self._wrong))
            raise CommandError("wrong technician token")
        self._wrong = 0

    async def start(self, args: dict[str, Any]) -> dict[str, Any]:
        await self._check_token(args)
        try:
            command = RefundCommand.model_validate(
                {k: v for k, v in args.items() if k not in ("token",)}
            )
        except ValueError as exc:
            raise CommandError(f"not a refund request: {_first_line(exc)}") from None
        ask = _ask(command, "technician")
        try:
            started = await self._refunds.start(ask)
        except RefundRefused as exc:
            raise CommandError(str(exc)) from None
        return {
            "refund_no": started.refund_no,
            "amount_fen": started.amount_fen,
            "state": started.state,
            "again": started.again,
        }

    async def list(self, args: dict[str, Any]) -> dict[str, Any]:
        await self._check_token(args)
        sale_id = args.get("sale_id")
        if not isinstance(sale_id, str) or not sale_id:
            raise CommandError("sale_id must be a sale id")
        return {"sale_id": sale_id, "refunds": await self._refunds.refunds_of(sale_id)}


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[1 if len(str(exc).splitlines()) > 1 else 0].strip()


__all__ = ["OP_REFUND", "RefundOp", "RefundReason", "TechnicianRefunds"]
