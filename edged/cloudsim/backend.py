"""The simulated backend's brain: uplink envelopes in, signed `cmd/pay` results out.

No MQTT here (server.py carries the bytes), so the rules are easy to read and test: drop
repeats by envelope id, open sealed codes and check them, keep one record per trade so a
retried request never charges twice, and answer by the trade's scenario.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from edged.cloudsim.keys import BackendKeys
from edged.cloudsim.orders import OrderDesk
from edged.cloudsim.scenarios import Scenario, Settings, scenario_for_code
from edged.contract.bodies import (
    BodyError,
    CloseRequest,
    MicropayRequest,
    NativeCreateRequest,
    OrderBody,
    PayResult,
    QueryRequest,
    ReleaseReport,
    ReverseRequest,
    TradeState,
    TxnBody,
    dump_body,
    parse_body,
)
from edged.contract.envelope import Envelope, EnvelopeError, decode_envelope, make_envelope, rfc3339
from edged.contract.signing import sign_envelope
from edged.contract.topics import PREFIX, DeviceTopics, Downlink
from edged.services.payments.codes import classify_payment_code
from edged.services.payments.sealing import SealError, open_code

log = logging.getLogger("edged.cloudsim")

MAX_SEEN_IDS = 100_000


@dataclass
class Trade:
    device: DeviceTopics
    trade_no: str
    sale_id: str
    amount_fen: int
    method: str
    scenario: Scenario
    state: TradeState
    pay_at: float | None = None
    """Monotonic time the shopper confirms (user-paying and native scenarios)."""
    transaction_id: str = ""
    charges: int = 0
    """How many times money moved for this trade: must never exceed one."""
    history: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outgoing:
    topic: str
    payload: bytes


class Backend:
    def __init__(self, keys: BackendKeys, settings: Settings | None = None) -> None:
        self.keys = keys
        self.settings = settings or Settings()
        self.trades: dict[str, Trade] = {}
        self.txns: dict[str, dict[str, Any]] = {}
        self.releases: dict[int, list[str]] = {}
        self.desk = OrderDesk(keys.signing)
        """Release id -> the states its `txn.release` reports went through, in order."""
        self.received: Counter[str] = Counter()
        self.duplicates = 0
        self.rejected: Counter[str] = Counter()
        self._seen: dict[str, None] = {}
        self._seq = 0
        self.closed_unknown: set[str] = set()
        """Trade numbers reversed or closed before their request arrived: refused for ever
        (the contract's NOT_FOUND guarantee)."""

    # -- input --------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes) -> list[Outgoing]:
        """One uplink message; returns the replies to publish. Never raises on bad input."""
        device = _device_of(topic)
        if device is None:
            return []
        try:
            envelope = decode_envelope(payload)
        except EnvelopeError as exc:
            self.rejected["malformed"] += 1
            log.warning("dropped uplink", extra={"reason": str(exc), "topic": topic})
            return []
        if envelope.device != device.device:
            self.rejected["device mismatch"] += 1
            return []
        if envelope.id in self._seen:
            self.duplicates += 1
            return []
        self._remember(envelope.id)
        self.received[envelope.type] += 1
        try:
            return self._dispatch(device, envelope)
        except BodyError as exc:
            self.rejected["malformed body"] += 1
            log.warning("dropped uplink body", extra={"reason": str(exc), "type": envelope.type})
            return []

    def due(self) -> list[Outgoing]:
        """Native orders whose shopper has now paid in the mini-program: push the result."""
        now = time.monotonic()
        out = []
        for trade in self.trades.values():
            if (
                trade.method == "native_qr"
                and trade.state is TradeState.NOTPAY
                and trade.pay_at is not None
                and now >= trade.pay_at
            ):
                self._pay(trade)
                out.append(self._result(trade))
        return out

    # -- rules --------------------------------------------------------------------------

    def _dispatch(self, device: DeviceTopics, envelope: Envelope) -> list[Outgoing]:
        kind = envelope.type
        if kind == "pay.micropay":
            return self._micropay(device, parse_body(MicropayRequest, envelope.body))
        if kind == "pay.native_create":
            return self._native(device, parse_body(NativeCreateRequest, envelope.body))
        if kind == "pay.query":
            return self._query(device, parse_body(QueryRequest, envelope.body).trade_no)
        if kind == "pay.reverse":
            return self._cancel(device, parse_body(ReverseRequest, envelope.body).trade_no)
        if kind == "pay.close":
            return self._cancel(device, parse_body(CloseRequest, envelope.body).trade_no)
        if kind == "order.status":
            status = parse_body(OrderBody, envelope.body)
            self.desk.record_status(status.order_id, status.status.value)
            return []
        if kind in ("txn.release", "order.release"):
            report = parse_body(ReleaseReport, envelope.body)
            self.releases.setdefault(report.release_id, []).append(report.state.value)
            return []
        if kind.startswith("txn."):
            body = parse_body(TxnBody, envelope.body)
            self.txns[body.sale_id] = dump_body(body)
        return []

    def _micropay(self, device: DeviceTopics, request: MicropayRequest) -> list[Outgoing]:
        known = self.trades.get(request.trade_no)
        if known is not None:  # a retry of the same trade: answer, never charge again
            return self._answer(known)
        if request.trade_no in self.closed_unknown:
            return [self._refused(device, request.trade_no, request.sale_id, request.amount_fen)]
        try:
            code = open_code(request.sealed_code, request.trade_no, self.keys.seal)
        except SealError:
            code = ""
        method = classify_payment_code(code) if code else None
        scenario = scenario_for_code(code, self.settings.scenario) if code else Scenario.DECLINE
        trade = Trade(
            device=device,
            trade_no=request.trade_no,
            sale_id=request.sale_id,
            amount_fen=request.amount_fen,
            method=request.method.value,
            scenario=scenario,
            state=TradeState.USERPAYING,
        )
        self.trades[trade.trade_no] = trade
        if method is None or method.value != request.method.value:
            trade.state = TradeState.FAILED
            trade.history.append("invalid payment code")
            return [self._result(trade, "invalid payment code")]
        if scenario is Scenario.SUCCESS:
            self._pay(trade)
        elif scenario is Scenario.DECLINE:
            trade.state = TradeState.FAILED
        elif scenario is Scenario.USER_PAYING:
            trade.pay_at = time.monotonic() + self.settings.user_paying_s
        elif scenario is Scenario.UNKNOWN:
            trade.state = TradeState.UNKNOWN
        trade.history.append(f"micropay:{scenario.value}")
        return self._answer(trade)

    def _native(self, device: DeviceTopics, request: NativeCreateRequest) -> list[Outgoing]:
        if request.trade_no in self.trades:
            return []
        if request.trade_no in self.closed_unknown:
            return [self._refused(device, request.trade_no, request.sale_id, request.amount_fen)]
        scenario = self.settings.native_scenario
        delay = {
            Scenario.SUCCESS: self.settings.native_pay_after_s,
            Scenario.USER_PAYING: self.settings.user_paying_s,
        }.get(scenario)
        trade = Trade(
            device=device,
            trade_no=request.trade_no,
            sale_id=request.sale_id,
            amount_fen=request.amount_fen,
            method="native_qr",
            scenario=scenario,
            state=TradeState.NOTPAY,
            pay_at=None if delay is None else time.monotonic() + delay,
        )
        trade.history.append(f"native:{scenario.value}:{request.session}")
        self.trades[trade.trade_no] = trade
        return []

    def _query(self, device: DeviceTopics, trade_no: str) -> list[Outgoing]:
        trade = self.trades.get(trade_no)
        if trade is None:  # not (yet) here: say so, close nothing
            return [self._not_found(device, trade_no)]
        if (
            trade.state is TradeState.USERPAYING
            and trade.pay_at is not None
            and time.monotonic() >= trade.pay_at
        ):
            self._pay(trade)
        trade.history.append("query")
        return self._answer(trade)

    def _cancel(self, device: DeviceTopics, trade_no: str) -> list[Outgoing]:
        """Reverse a micropay or close a native order: unless the shopper has already paid.
        A trade it does not know is closed for good and answered NOT_FOUND."""
        trade = self.trades.get(trade_no)
        if trade is None:
            self.closed_unknown.add(trade_no)
            return [self._not_found(device, trade_no)]
        if trade.scenario is Scenario.PAY_DURING_REVERSE and trade.state is TradeState.USERPAYING:
            self._pay(trade)  # the shopper confirmed a moment before the reverse arrived
        elif trade.state in (TradeState.USERPAYING, TradeState.UNKNOWN):
            trade.state = TradeState.REVERSED
        elif trade.state is TradeState.NOTPAY:
            trade.state = TradeState.CLOSED
        trade.history.append(f"cancel->{trade.state.value}")
        return [self._result(trade, "already paid" if trade.state is TradeState.SUCCESS else "")]

    def _answer(self, trade: Trade) -> list[Outgoing]:
        if trade.scenario is Scenario.NO_ANSWER and trade.state is TradeState.USERPAYING:
            return []
        reason = "insufficient funds" if trade.state is TradeState.FAILED else ""
        return [self._result(trade, reason)]

    def _pay(self, trade: Trade) -> None:
        if trade.state is TradeState.SUCCESS:
            return
        trade.state = TradeState.SUCCESS
        trade.charges += 1
        trade.transaction_id = f"SIM{trade.trade_no[-12:]}"
        trade.history.append("paid")

    def _result(self, trade: Trade, reason: str = "") -> Outgoing:
        body = PayResult(
            trade_no=trade.trade_no,
            amount_fen=trade.amount_fen,
            state=trade.state,
            reason=reason,
            transaction_id=trade.transaction_id,
            paid_at=rfc3339(datetime.now(UTC)) if trade.state is TradeState.SUCCESS else None,
        )
        return self.sign_result(trade.device, dump_body(body))

    def _not_found(self, device: DeviceTopics, trade_no: str) -> Outgoing:
        body = PayResult(trade_no=trade_no, state=TradeState.NOT_FOUND, reason="no such trade")
        return self.sign_result(device, dump_body(body))

    def _refused(self, device: DeviceTopics, trade_no: str, sale_id: str, amount: int) -> Outgoing:
        """A request for a trade number closed while unknown: refused, never charged."""
        self.trades[trade_no] = Trade(
            device=device,
            trade_no=trade_no,
            sale_id=sale_id,
            amount_fen=amount,
            method="closed",
            scenario=Scenario.DECLINE,
            state=TradeState.CLOSED,
            history=["refused: trade number closed while unknown"],
        )
        body = PayResult(
            trade_no=trade_no, amount_fen=amount, state=TradeState.FAILED, reason="trade closed"
        )
        return self.sign_result(device, dump_body(body))

    def sign_result(self, device: DeviceTopics, body: dict[str, Any]) -> Outgoing:
        """A `pay.result` envelope for `device`, signed with the backend's key."""
        self._seq += 1
        now = datetime.now(UTC)
        envelope = make_envelope(
            type="pay.result",
            device=device.device,
            seq=self._seq,
            body=body,
            now=now,
            clock_synced=True,
            ttl=timedelta(seconds=self.settings.result_ttl_s),
        )
        signed = sign_envelope(envelope, self.keys.signing)
        return Outgoing(device.downlink(Downlink.PAY), signed.to_bytes())

    def _remember(self, msg_id: str) -> None:
        self._seen[msg_id] = None
        if len(self._seen) > MAX_SEEN_IDS:
            self._seen.pop(next(iter(self._seen)))

    def summary(self) -> dict[str, Any]:
        return {
            "trades": {
                t.trade_no: {
                    "state": t.state.value,
                    "charges": t.charges,
                    "amount_fen": t.amount_fen,
                }
                for t in self.trades.values()
            },
            "txns": len(self.txns),
            "releases": {str(key): states for key, states in self.releases.items()},
            "duplicates": self.duplicates,
            "received": dict(self.received),
        }


def _device_of(topic: str) -> DeviceTopics | None:
    parts = topic.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != PREFIX or parts[4] != "evt":
        return None
    return DeviceTopics(parts[2], parts[3])
