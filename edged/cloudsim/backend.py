"""The simulated backend's brain: uplink envelopes in, signed `cmd/pay` results out.

No MQTT here (server.py carries the bytes), so the rules are easy to read and test: drop
repeats by envelope id, open sealed codes and check them, keep one record per trade so a
retried request never charges twice, and answer by the trade's scenario.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from edged.cloudsim.downlink import DownlinkSigner
from edged.cloudsim.keys import BackendKeys
from edged.cloudsim.orders import OrderDesk
from edged.cloudsim.scenarios import RefundScenario, Scenario, Settings, scenario_for_code
from edged.contract.bodies import (
    BodyError,
    CloseRequest,
    MicropayRequest,
    NativeCreateRequest,
    OrderBody,
    PayResult,
    QueryRequest,
    RefundQuery,
    RefundRequest,
    RefundResult,
    RefundState,
    RefundTxn,
    ReleaseReport,
    ReverseRequest,
    SettlementReport,
    TradeState,
    TxnBody,
    dump_body,
    parse_body,
)
from edged.contract.envelope import Envelope, EnvelopeError, decode_envelope, rfc3339
from edged.contract.topics import PREFIX, DeviceTopics, Downlink
from edged.contract.txn_summary import summarize
from edged.services.payments.codes import classify_payment_code
from edged.services.payments.sealing import SealError, open_code
from edged.services.settlement.day import business_day, parse_cutover, shop_zone

log = logging.getLogger("edged.cloudsim")

MAX_SEEN_IDS = 100_000
LEDGER_TXNS = ("txn.completed", "txn.refunded", "txn.voided")
"""The evt/txn records a day's settlement counts."""


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


@dataclass
class Refund:
    device: DeviceTopics
    refund_no: str
    trade_no: str
    amount_fen: int
    scenario: RefundScenario
    state: RefundState
    ready_at: float | None = None
    """Monotonic time a PROCESSING refund is finished."""
    money_moves: int = 0
    """How many times money went back for this refund number: must never exceed one."""
    requests: int = 0
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
        """Envelope id -> {"type", "body"} of every evt/txn record received."""
        self.refunds: dict[str, Refund] = {}
        self.reports: list[dict[str, Any]] = []
        """Every `report.settlement` envelope received (as JSON), signature unchecked."""
        self.lose_txns = 0
        """Drop this many of the next evt/txn messages as if they never arrived (fault tests)."""
        self.altered: dict[int, int] = {}
        """sale_no -> amount this backend records for that completed sale (fault tests)."""
        self.releases: dict[int, list[str]] = {}
        """Release id -> the states its `txn.release` reports went through, in order."""
        self.desk = OrderDesk(keys.signing)
        self.received: Counter[str] = Counter()
        self.duplicates = 0
        self.rejected: Counter[str] = Counter()
        self._seen: dict[str, None] = {}
        self._signer = DownlinkSigner(keys.signing)
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
        if envelope.type in LEDGER_TXNS and self.lose_txns > 0:
            self.lose_txns -= 1  # lost on the way: not even its id is remembered
            self.rejected["lost on purpose"] += 1
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
        if kind == "refund.request":
            return self._refund(device, parse_body(RefundRequest, envelope.body))
        if kind == "refund.query":
            return self._refund_query(device, parse_body(RefundQuery, envelope.body))
        if kind == "order.status":
            status = parse_body(OrderBody, envelope.body)
            self.desk.record_status(status.order_id, status.status.value)
            return []
        if kind in ("txn.release", "order.release"):
            report = parse_body(ReleaseReport, envelope.body)
            self.releases.setdefault(report.release_id, []).append(report.state.value)
            return []
        if kind == "report.settlement":
            return self._reconcile(device, envelope)
        if kind.startswith("txn."):
            model = RefundTxn if kind == "txn.refunded" else TxnBody
            body = dump_body(parse_body(model, envelope.body))
            summary = summarize(kind, body)
            amount = summary.amount_fen
            if summary.status == "completed" and body.get("sale_no") in self.altered:
                amount = self.altered[body["sale_no"]]
            self.txns[envelope.id] = {
                "type": kind,
                "body": body,
                "device": device.root,
                "seq": envelope.seq,
                "status": summary.status,
                "at": summary.at,
                "amount_fen": amount,
            }
        return []

    # -- reconciliation -----------------------------------------------------------------

    def _reconcile(self, device: DeviceTopics, envelope: Envelope) -> list[Outgoing]:
        """Answer a settlement with this backend's own figures for that device and day."""
        report = parse_body(SettlementReport, envelope.body)
        self.reports.append(envelope.model_dump(exclude_none=True))
        zone, cutover = shop_zone(report.timezone), parse_cutover(report.cutover)
        day = report.business_day
        mine = sorted(
            (
                (t["seq"], txn_id, t)
                for txn_id, t in self.txns.items()
                if t["device"] == device.root
                and t["at"] is not None
                and t["status"] in ("completed", "refunded", "voided")
                and business_day(
                    datetime.fromisoformat(t["at"].replace("Z", "+00:00")), zone, cutover
                ).isoformat()
                == day
            ),
            key=lambda item: item[0],
        )
        ids = "".join(f"{txn_id}\n" for _, txn_id, _ in mine)
        body = {
            "business_day": day,
            "revision": report.revision,
            "txn_count": len(mine),
            "sales_fen": sum(t["amount_fen"] for _, _, t in mine if t["status"] == "completed"),
            "refunds_fen": sum(t["amount_fen"] for _, _, t in mine if t["status"] == "refunded"),
            "digest": hashlib.sha256(ids.encode()).hexdigest(),
            "txns": [{"txn_id": txn_id, "amount_fen": t["amount_fen"]} for _, txn_id, t in mine],
        }
        signed = self._signer.sign(device, "recon.figures", body, self.settings.result_ttl_s)
        return [Outgoing(device.downlink(Downlink.RECON), signed.to_bytes())]

    # -- refunds ------------------------------------------------------------------------

    def _refund(self, device: DeviceTopics, request: RefundRequest) -> list[Outgoing]:
        known = self.refunds.get(request.refund_no)
        if known is not None:  # the same refund number again: answer, never refund twice
            known.requests += 1
            self._advance(known)
            return self._refund_answer(known)
        refund = Refund(
            device=device,
            refund_no=request.refund_no,
            trade_no=request.trade_no,
            amount_fen=request.amount_fen,
            scenario=self.settings.refund_scenario,
            state=RefundState.PROCESSING,
            requests=1,
        )
        self.refunds[refund.refund_no] = refund
        trade = self.trades.get(request.trade_no)
        already = sum(
            r.amount_fen
            for r in self.refunds.values()
            if r.trade_no == request.trade_no
            and r is not refund
            and r.state is not RefundState.CLOSED
        )
        if trade is None or trade.state is not TradeState.SUCCESS:
            return self._refund_close(refund, "the trade was not paid")
        if already + request.amount_fen > trade.amount_fen:
            return self._refund_close(refund, "refund exceeds the paid amount")
        if refund.scenario is RefundScenario.CLOSED:
            return self._refund_close(refund, "refund refused by the channel")
        if refund.scenario is RefundScenario.SUCCESS:
            self._refund_pay(refund)
        else:
            refund.ready_at = time.monotonic() + self.settings.refund_processing_s
        refund.history.append(f"request:{refund.scenario.value}")
        if refund.scenario is RefundScenario.SILENT:
            return []
        return self._refund_answer(refund)

    def _refund_query(self, device: DeviceTopics, query: RefundQuery) -> list[Outgoing]:
        refund = self.refunds.get(query.refund_no)
        if refund is None:
            unknown = Refund(
                device, query.refund_no, query.trade_no, query.amount_fen,
                RefundScenario.SUCCESS, RefundState.NOT_FOUND,
            )  # fmt: skip
            return self._refund_answer(unknown)
        self._advance(refund)
        refund.history.append("query")
        return self._refund_answer(refund)

    def _advance(self, refund: Refund) -> None:
        if (
            refund.state is RefundState.PROCESSING
            and refund.ready_at is not None
            and time.monotonic() >= refund.ready_at
        ):
            if refund.scenario is RefundScenario.ABNORMAL:
                refund.state = RefundState.ABNORMAL
                refund.history.append("abnormal")
            else:
                self._refund_pay(refund)

    def _refund_pay(self, refund: Refund) -> None:
        if refund.state is RefundState.SUCCESS:
            return
        refund.state = RefundState.SUCCESS
        refund.money_moves += 1
        refund.history.append("refunded")

    def _refund_close(self, refund: Refund, reason: str) -> list[Outgoing]:
        refund.state = RefundState.CLOSED
        refund.history.append(f"closed:{reason}")
        return self._refund_answer(refund, reason)

    def _refund_answer(self, refund: Refund, reason: str = "") -> list[Outgoing]:
        if refund.state is RefundState.ABNORMAL and not reason:
            reason = "the shopper's account cannot take the refund"
        body = RefundResult(
            refund_no=refund.refund_no,
            trade_no=refund.trade_no,
            amount_fen=refund.amount_fen,
            state=refund.state,
            reason=reason,
            refund_id=f"SIMR{refund.refund_no[-14:]}"
            if refund.state is RefundState.SUCCESS
            else "",
            succeeded_at=rfc3339(datetime.now(UTC))
            if refund.state is RefundState.SUCCESS
            else None,
        )
        return [self.sign_result(refund.device, dump_body(body), "refund.result")]

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

    def sign_result(
        self, device: DeviceTopics, body: dict[str, Any], type: str = "pay.result"
    ) -> Outgoing:
        """A `pay.result` (or another cmd/pay) envelope for `device`, signed by the backend."""
        signed = self._signer.sign(device, type, body, self.settings.result_ttl_s)
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
            "refunds": {
                r.refund_no: {
                    "state": r.state.value,
                    "money_moves": r.money_moves,
                    "amount_fen": r.amount_fen,
                    "trade_no": r.trade_no,
                    "requests": r.requests,
                }
                for r in self.refunds.values()
            },
            "releases": {str(key): states for key, states in self.releases.items()},
            "duplicates": self.duplicates,
            "received": dict(self.received),
        }


def _device_of(topic: str) -> DeviceTopics | None:
    parts = topic.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != PREFIX or parts[4] != "evt":
        return None
    return DeviceTopics(parts[2], parts[3])
