"""The payments service: persisted micropay and native-QR state machines driven by one engine.

Every state change is one transaction holding the new `payments` row state, the evt/pay
outbox message that reports it and, for a final state, the sales ledger's settlement; only
then is the shopper told anything. Results arrive as verified `cmd/pay` envelopes inside the
link's inbox transaction, and release goods only for the exact trade number and amount on
record.

Doubt is bounded for the shopper, not for the money: a cancel (reverse or close) still not
confirmed `reverse_timeout_s` after it began parks the payment `in_doubt`. The sale is
parked with it (not paid, nothing released), the kiosk takes the next shopper, and the
engine keeps sending the cancel with back-off up to `PARKED_RETRY_MAX_S`, reporting each
change to operations on `evt/pay` (`pay.doubt`). A SUCCESS for a parked trade is recorded
(`paid_late`, refund due) and releases nothing. A request still in the kiosk's own outbox
when the kiosk gives up is withdrawn instead (`withdrawn`): it never leaves.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from edged.config.models import Payments as PaymentsConfig
from edged.contract.bodies import MicropayRequest, NativeCreateRequest, PayMethod, dump_body
from edged.contract.envelope import parse_rfc3339, rfc3339
from edged.contract.ids import new_id
from edged.contract.topics import Uplink
from edged.services.payments.codes import classify_payment_code
from edged.services.payments.engine import PaymentEngine
from edged.services.payments.protocol import NativeQr, PaymentMethod, SettlementSink
from edged.services.payments.records import (
    BLOCKING_STATES,
    OPEN_STATES,
    PARKED_VALUES,
    _load,
    _marks,
)
from edged.services.payments.results import PaymentResults
from edged.services.payments.sealing import seal_code
from edged.services.payments.states import PayState, on_cancel
from edged.store import Store, StoreUnwritable
from edged.store.outbox import Outbox

log = logging.getLogger("edged.payments")

PARK_ON_CANCEL_AFTER_S = 5.0
"""A cancel asked again this long after the first one parks the payment (staff's way out)."""


class PaymentRejected(ValueError):
    """A request the service refuses before anything happened; the message is for the shopper."""


class PaymentsService(PaymentEngine, PaymentResults):
    """Implements `Payments` for checkout; `handle_downlink` is registered for `cmd/pay`.

    The work is split by job: `records` writes a payment's row, `effects` follows a commit,
    `engine` acts on time, `results` applies what the backend sent, `requests` builds what
    goes out; this class is what checkout and operations call.
    """

    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        config: PaymentsConfig,
        seal_key: X25519PublicKey | None,
        *,
        sink: SettlementSink,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._config = config
        self._seal_key = seal_key
        self._sink = sink
        self._open: dict[str, str] = {}
        """trade_no -> sale_id of every committed non-final payment."""
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.rejected: Counter[str] = Counter()
        self.applied: Counter[str] = Counter()
        store.on_write_trouble(self._store_trouble)

    def busy(self) -> bool:
        return bool(self._open)

    def reconfigure(self, config: PaymentsConfig) -> None:
        """New timings for the next payment and the next step of open ones (remote config)."""
        self._config = config

    async def start(self) -> None:
        """Load the open payments, so `busy()` is right before the engine first runs."""
        await self._refresh_open()

    async def pay_by_code(self, sale_id: str, amount_fen: int, code: str) -> str:
        method = classify_payment_code(code)
        if method is None:
            raise PaymentRejected("not a WeChat Pay or Alipay payment code")
        self._check_new(sale_id, amount_fen)
        if self._seal_key is None:
            raise PaymentRejected("payment codes cannot be accepted: no backend seal key")
        trade_no = new_id().replace("-", "")
        request = MicropayRequest(
            trade_no=trade_no,
            sale_id=sale_id,
            method=PayMethod(method.value),
            amount_fen=amount_fen,
            sealed_code=seal_code(code, trade_no, self._seal_key),
        )
        del code
        now = self._store.clock.now()
        deadline = now + timedelta(seconds=self._config.deadline_s)
        async with self._store.transaction() as tx:
            sent = await self._outbox.add(tx, Uplink.PAY, "pay.micropay", dump_body(request))
            await self._insert(
                tx, trade_no, sale_id, method, amount_fen, PayState.REQUESTED, deadline, now,
                {"last_msg": sent.id, "request_msg": sent.id},
            )  # fmt: skip
        self._opened(trade_no, sale_id)
        log.info(
            "micropay requested",
            extra={
                "trade_no": trade_no,
                "sale_id": sale_id,
                "method": method.value,
                "amount_fen": amount_fen,
            },
        )
        return trade_no

    async def pay_by_qr(self, sale_id: str, amount_fen: int) -> NativeQr:
        self._check_new(sale_id, amount_fen)
        trade_no = new_id().replace("-", "")
        session = secrets.token_urlsafe(12)
        now = self._store.clock.now()
        expires = now + timedelta(seconds=self._config.native_qr_ttl_s)
        request = NativeCreateRequest(
            trade_no=trade_no,
            sale_id=sale_id,
            amount_fen=amount_fen,
            session=session,
            expires_at=rfc3339(expires),
        )
        async with self._store.transaction() as tx:
            sent = await self._outbox.add(tx, Uplink.PAY, "pay.native_create", dump_body(request))
            await self._insert(
                tx, trade_no, sale_id, PaymentMethod.NATIVE_QR, amount_fen,
                PayState.NATIVE_OPEN, expires, now,
                {"session": session, "last_msg": sent.id, "request_msg": sent.id},
            )  # fmt: skip
        self._opened(trade_no, sale_id)
        log.info(
            "native order registered",
            extra={"trade_no": trade_no, "sale_id": sale_id, "amount_fen": amount_fen},
        )
        return NativeQr(trade_no=trade_no, qr_data=session, expires_at=expires)

    async def cancel(self, sale_id: str) -> None:
        trades = [t for t, s in self._open.items() if s == sale_id]
        for trade_no in trades:
            async with self._store.transaction() as tx:
                row = await _load(tx, trade_no)
                step = on_cancel(PayState(row["state"])) if row else None
                if row is None or step is None or self._cancel_pressed_again(row):
                    continue
                step = await self._apply(tx, row, step, self._store.clock.now())
            await self._after_commit([(trade_no, sale_id, step)])

    async def recover(self) -> None:
        """Query every open payment now and wait until each one reached a final state."""
        count = 0
        try:
            async with self._store.transaction() as tx:
                count = await tx.execute(
                    f"UPDATE payments SET next_at = ? WHERE state IN ({_marks(OPEN_STATES)})",
                    (tx.now, *OPEN_STATES),
                )
        except StoreUnwritable:
            pass  # each open payment keeps its own next_at: the engine acts once it can write
        await self._refresh_open()
        if count:
            log.info("recovering open payments", extra={"open": count})
        self._wake.set()
        await self._idle.wait()

    def _cancel_pressed_again(self, row: Any) -> bool:
        """A second cancel within moments of the first is the same press, not staff giving
        up on an unconfirmed cancel: it parks nothing."""
        if row["state"] not in (PayState.REVERSING, PayState.CLOSING):
            return False
        started = parse_rfc3339(row["stage_started_at"])
        waited = (self._store.clock.now() - started).total_seconds()
        return waited < min(PARK_ON_CANCEL_AFTER_S, self._config.reverse_timeout_s)

    def _check_new(self, sale_id: str, amount_fen: int) -> None:
        if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
            raise PaymentRejected("amount must be a positive whole number of fen")
        if amount_fen > self._config.max_sale_fen:
            raise PaymentRejected(
                f"amount {amount_fen} fen is above the limit of {self._config.max_sale_fen} fen"
            )
        if self._open:
            raise PaymentRejected("another payment is still being resolved")

    async def status(self) -> dict[str, Any]:
        rows = await self._store.fetchall(
            "SELECT trade_no, sale_id, method, amount_fen, state, deadline_at, attempts, "
            f"reverse_attempts FROM payments WHERE state IN ({_marks(BLOCKING_STATES)})",
            BLOCKING_STATES,
        )
        parked = await self.in_doubt()
        last = await self._store.fetchone(
            "SELECT trade_no, sale_id, method, amount_fen, state, transaction_id FROM payments "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1"
        )
        return {
            "busy": self.busy(),
            "open": [dict(row) for row in rows],
            "last": dict(last) if last else None,
            "rejected_results": dict(self.rejected),
            "applied_results": dict(self.applied),
            "in_doubt": parked["in_doubt"],
            "refund_due": parked["refund_due"],
        }

    async def in_doubt(self) -> dict[str, list[dict[str, Any]]]:
        """For the technician: parked payments still being resolved, and late successes
        whose money must go back."""
        columns = (
            "trade_no, sale_id, method, amount_fen, state, reverse_attempts, "
            "stage_started_at, updated_at, transaction_id, json_extract(detail, '$.reason') "
            "AS reason"
        )
        parked = await self._store.fetchall(
            f"SELECT {columns} FROM payments WHERE state IN ({_marks(PARKED_VALUES)}) "
            "ORDER BY created_at",
            PARKED_VALUES,
        )
        late = await self._store.fetchall(
            f"SELECT {columns} FROM payments WHERE state = ? ORDER BY created_at",
            (PayState.PAID_LATE.value,),
        )
        return {"in_doubt": [dict(r) for r in parked], "refund_due": [dict(r) for r in late]}
