"""Payment results from the backend: a verified `cmd/pay` envelope, applied or rejected.

The link has checked signature, expiry, replay and addressing; this checks that the result
is for a trade on record, for exactly its amount, and applies the state machine's step inside
the inbox transaction. A rejection has no effect and is counted.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from edged.contract.bodies import BodyError, PayResult, TradeState, envelope_body
from edged.contract.envelope import Envelope
from edged.link.downlink import HandlerRejected
from edged.services.payments.effects import PaymentEffects
from edged.services.payments.records import _load_now
from edged.services.payments.states import FINAL, PayState, Step
from edged.services.payments.states import on_result as result_step
from edged.store import Statements, Transaction

log = logging.getLogger("edged.payments")

RESULT_TYPE = "pay.result"


class PaymentResults(PaymentEffects):
    async def handle_downlink(self, envelope: Envelope, tx: Transaction, address: Any) -> None:
        """A verified cmd/pay envelope, inside the inbox transaction: apply it or reject it.

        The link has checked signature, expiry, replay and addressing; this checks that the
        result is for a trade on record, for exactly its amount. A rejection has no effect.
        """
        try:
            result = envelope_body(envelope, RESULT_TYPE, PayResult)
        except BodyError as exc:
            self._reject(envelope, str(exc))
        now = self._store.clock.now()

        def check_and_apply(s: Statements) -> None:
            row = _load_now(s, result.trade_no)
            if row is None:
                self._reject(envelope, "unknown trade number", result.trade_no)
            not_found = result.state is TradeState.NOT_FOUND and result.amount_fen is None
            if not not_found and result.amount_fen != row["amount_fen"]:
                self._reject(envelope, "amount does not match the trade", result.trade_no)
            state = PayState(row["state"])
            step = result_step(state, result.state, result.reason)
            if step is not None and step.state is PayState.PAID_LATE:
                log.error(
                    "SUCCESS for a parked payment: recorded, nothing released, refund due",
                    extra={"trade_no": result.trade_no, "amount_fen": row["amount_fen"]},
                )
            if step is None:
                if (
                    state in FINAL
                    and state is not PayState.PAID
                    and result.state.value == "SUCCESS"
                ):
                    log.error(
                        "SUCCESS for a payment already ended unpaid: backend must refund",
                        extra={"trade_no": result.trade_no, "state": state.value},
                    )
                s.after.append(lambda: self.applied.update(ignored=1))
                return
            applied = self._apply_now(s, row, step, now, result.transaction_id, answered=True)
            s.after.append(lambda: self._result_applied(envelope, result, row["sale_id"], applied))

        # Deferred: check and apply ride on the inbox transaction's COMMIT, so the sale's
        # durable commit is one hop to the writer thread.
        tx.defer(check_and_apply)

    def _result_applied(
        self, envelope: Envelope, result: PayResult, sale_id: str, step: Step
    ) -> None:
        self.applied[step.state.value] += 1
        log.info(
            "payment result applied",
            extra={
                "trade_no": result.trade_no,
                "result": result.state.value,
                "state": step.state.value,
                "msg_id": envelope.id,
            },
        )
        self._spawn(self._after_commit([(result.trade_no, sale_id, step)], barrier=True))

    def _reject(self, envelope: Envelope, reason: str, trade_no: str = "") -> NoReturn:
        """Count and log, then make the link roll the inbox transaction back: no effect."""
        self.rejected[reason.split(":")[0]] += 1
        log.warning(
            "payment result rejected",
            extra={"reason": reason, "msg_id": envelope.id, "trade_no": trade_no},
        )
        raise HandlerRejected(reason)
