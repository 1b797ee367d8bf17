"""Message bodies of the contract (v1): the `body` of each envelope type, as pydantic models.

The daemon builds and parses bodies with these models, the simulated cloud does the same, and
the AsyncAPI document is generated from them, so a field cannot drift between the three.
Money is always integer fen (`strict`: a float or a string is rejected, never rounded).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edged.contract.envelope import Envelope, first_problem
from edged.contract.topics import Downlink, Uplink

TradeNo = Annotated[str, Field(min_length=8, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
"""Merchant trade number: at most 32 characters, as the payment networks require."""
SaleId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Amount = Annotated[int, Field(gt=0, le=100_000_000, strict=True)]
"""A positive amount in fen."""
Fen = Annotated[int, Field(ge=0, le=100_000_000_000, strict=True)]
B64 = Annotated[str, Field(min_length=4, max_length=4096, pattern=r"^[A-Za-z0-9+/]+={0,2}$")]
Timestamp = Annotated[str, Field(min_length=20, max_length=40)]
"""RFC 3339 with a UTC offset."""


class BodyError(ValueError):
    """A body that does not match its type's model; the message says which field, safe to log."""


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PayMethod(StrEnum):
    WECHAT = "wechat"
    ALIPAY = "alipay"
    NATIVE_QR = "native_qr"


# -- uplink: evt/pay ---------------------------------------------------------------------


class SealedCode(Body):
    """A payment code sealed to the backend's X25519 key (see services/payments/sealing.py)."""

    alg: Literal["X25519-HKDF-SHA256-AES256GCM"] = "X25519-HKDF-SHA256-AES256GCM"
    epk: B64
    """The sender's ephemeral X25519 public key."""
    nonce: B64
    ct: B64
    """AES-GCM ciphertext and tag; the trade number is the associated data."""


class MicropayRequest(Body):
    """`pay.micropay`: collect `amount_fen` with the code the shopper showed."""

    trade_no: TradeNo
    sale_id: SaleId
    method: Literal[PayMethod.WECHAT, PayMethod.ALIPAY]
    amount_fen: Amount
    currency: Literal["CNY"] = "CNY"
    sealed_code: SealedCode


class NativeCreateRequest(Body):
    """`pay.native_create`: register an order the shopper pays in the mini-program."""

    trade_no: TradeNo
    sale_id: SaleId
    amount_fen: Amount
    currency: Literal["CNY"] = "CNY"
    session: Annotated[str, Field(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
    """What the kiosk's QR code carries (mini-program codes hold at most 32 characters)."""
    expires_at: Timestamp


class QueryRequest(Body):
    """`pay.query`: what is the state of this trade? Answered with a `pay.result`."""

    trade_no: TradeNo
    attempt: int = Field(ge=1, strict=True)


class ReverseRequest(Body):
    """`pay.reverse`: cancel a micropay; answered REVERSED, or SUCCESS when already paid."""

    trade_no: TradeNo
    reason: Literal["deadline", "unknown_result", "shopper_cancelled"]
    attempt: int = Field(ge=1, strict=True)


class CloseRequest(Body):
    """`pay.close`: close a native order (expired or cancelled); answered CLOSED or SUCCESS."""

    trade_no: TradeNo
    reason: Literal["expired", "shopper_cancelled"]
    attempt: int = Field(ge=1, strict=True)


class PayDoubt(Body):
    """`pay.doubt`: for operations, a payment the kiosk gave up waiting for, and its end.

    `in_doubt`: the cancel (reverse or close) was never confirmed within the reverse timeout;
    the sale is parked (not paid, no goods released), the kiosk serves the next shopper and
    keeps sending the cancel with back-off. `reversed` / `cancelled`: resolved, no money
    moved. `paid_late`: a SUCCESS arrived for the parked trade; the money moved after the
    kiosk gave up, no goods were released, and the payment must be refunded.
    """

    trade_no: TradeNo
    sale_id: SaleId
    method: PayMethod
    amount_fen: Amount
    state: Literal["in_doubt", "reversed", "cancelled", "paid_late"]
    reason: str = Field("", max_length=200)
    transaction_id: str = Field("", max_length=64)
    refund_due: bool


# -- downlink: cmd/pay -------------------------------------------------------------------


class TradeState(StrEnum):
    SUCCESS = "SUCCESS"
    """Paid. Only this, signed, for the exact trade number and amount releases goods."""
    USERPAYING = "USERPAYING"
    """The shopper is confirming on the phone: keep querying."""
    NOTPAY = "NOTPAY"
    """Native order not paid yet."""
    FAILED = "FAILED"
    """Declined; `reason` says why."""
    REVERSED = "REVERSED"
    CLOSED = "CLOSED"
    UNKNOWN = "UNKNOWN"
    """The backend cannot tell (e.g. the network timed out): the kiosk reverses."""
    NOT_FOUND = "NOT_FOUND"
    """The backend has no trade with this number (`amount_fen` may be absent). The
    guarantee that comes with it: answering a `pay.reverse` or `pay.close`, the backend has
    closed that trade number, so a `pay.micropay` or `pay.native_create` arriving later for
    it is refused (answered FAILED, never charged); the kiosk ends the payment unpaid.
    Answering a `pay.query` it closes nothing (the request may still be on its way)."""


class PayResult(Body):
    """`pay.result`: the backend's answer to any pay request, or a pushed native result."""

    trade_no: TradeNo
    amount_fen: Amount | None = None
    """The trade's amount; required for every state but NOT_FOUND."""
    state: TradeState
    reason: str = Field("", max_length=200)
    transaction_id: str = Field("", max_length=64)
    """The payment network's id for a SUCCESS, printed on the receipt."""
    paid_at: Timestamp | None = None

    @model_validator(mode="after")
    def _amount_unless_not_found(self) -> PayResult:
        if self.amount_fen is None and self.state is not TradeState.NOT_FOUND:
            raise ValueError("amount_fen is required unless state is NOT_FOUND")
        return self


# -- uplink: evt/txn, evt/order, evt/health ----------------------------------------------


class TxnLine(Body):
    line_no: int = Field(ge=1, strict=True)
    barcode: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    unit_price_fen: Fen
    quantity: int = Field(gt=0, strict=True)
    amount_fen: Fen


class TxnTotals(Body):
    items: int = Field(ge=0, strict=True)
    total_fen: Fen


class TxnPayment(Body):
    trade_no: TradeNo
    method: PayMethod
    amount_fen: Amount
    transaction_id: str = Field("", max_length=64)


class TxnBody(Body):
    """`txn.completed`: a finished sale, as checkout commits it with its payment."""

    sale_id: SaleId
    sale_no: int = Field(ge=1, strict=True)
    """The kiosk's persisted sale sequence number (ordering never trusts the wall clock)."""
    status: Literal["completed", "voided", "refunded"]
    currency: Literal["CNY"] = "CNY"
    lines: list[TxnLine] = Field(max_length=500)
    totals: TxnTotals
    payments: list[TxnPayment] = Field(max_length=8)
    opened_at: Timestamp
    completed_at: Timestamp | None
    clock_synced: bool


RequestId = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
"""An operations request's id (`cmd/op`); its replies go to `rsp/{request_id}`."""


class ReleaseState(StrEnum):
    PENDING = "pending"
    """Committed with the payment (or the redeemed order), before the relay is energised."""
    UNLOCKED = "unlocked"
    """The lock is energised. Final when the device has no door sensor."""
    OPENED = "opened"
    CLOSED = "closed"
    NOT_OPENED = "not_opened"
    """Nobody opened the door in time (or a restart came too late): relocked, refund marked."""
    LEFT_OPEN = "left_open"
    """Open longer than allowed: an alarm until it closes."""
    FAILED = "failed"
    """The relay could not be switched, or the daemon stopped while the door was unlocked."""


class ReleaseReport(Body):
    """`txn.release` (on evt/txn for a sale, or for an `op.door.unlock` request, which names
    `request_id`): a release's new state, committed before it is sent, once per change.
    `refund_marked` says the sale is marked for a full refund."""

    release_id: int = Field(ge=1, strict=True)
    sale_id: SaleId | None = None
    order_id: str | None = Field(None, min_length=1, max_length=64)
    request_id: RequestId | None = None
    """The operations request that released the door (staff, remotely); no refund mark."""
    slot: int = Field(ge=1, le=64, strict=True)
    state: ReleaseState
    reason: str = Field("", max_length=200)
    refund_marked: bool = False
    at: Timestamp
    clock_synced: bool


# -- downlink: cmd/stock; uplink: evt/stock ----------------------------------------------

Barcode = Annotated[str, Field(min_length=1, max_length=48, pattern=r"^[!-~]+$")]
"""As printed under the bars; the kiosk checks EAN/UPC check digits before it uses one."""
ProductName = Annotated[str, Field(min_length=1, max_length=64)]
StockCount = Annotated[int, Field(ge=-1_000_000_000, le=1_000_000_000, strict=True)]


class StockItem(Body):
    """One product's change. Fields left out stay as they are; a new product needs `name` and
    `price_fen`. `quantity` sets the count (after a stock take), `delta` adds to it (a
    delivery, or a negative write-off); not both."""

    barcode: Barcode
    name: ProductName | None = None
    price_fen: Fen | None = None
    active: bool | None = None
    quantity: Annotated[int, Field(ge=0, le=1_000_000_000, strict=True)] | None = None
    delta: StockCount | None = None

    @model_validator(mode="after")
    def _one_count_and_some_change(self) -> StockItem:
        if self.quantity is not None and self.delta is not None:
            raise ValueError("give quantity or delta, not both")
        if all(
            value is None
            for value in (self.name, self.price_fen, self.active, self.quantity, self.delta)
        ):
            raise ValueError("an item must change something")
        return self


class StockUpdate(Body):
    """`stock.update`: prices, names and stock from the backend, signed and versioned.

    `version` grows with every update the backend makes; a product already at this version or
    a newer one keeps what it has (the item is reported `stale`), so updates delivered out of
    order never roll a price back. Any invalid item rejects the whole message unchanged.
    """

    version: int = Field(ge=1, le=2**53, strict=True)
    items: list[StockItem] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _each_product_once(self) -> StockUpdate:
        barcodes = [item.barcode for item in self.items]
        if len(set(barcodes)) != len(barcodes):
            raise ValueError("a barcode appears twice")
        return self


class StockLevel(Body):
    barcode: Barcode
    name: ProductName
    price_fen: Fen
    active: bool
    quantity: StockCount
    version: int = Field(ge=0, strict=True)
    """The `stock.update` version this product's record now reflects."""


class StockApplied(Body):
    """`stock.applied`: the outcome of one `stock.update`, committed with its changes."""

    update_id: str = Field(min_length=8, max_length=64)
    """The `id` of the `stock.update` envelope."""
    version: int = Field(ge=1, strict=True)
    applied: list[StockLevel] = Field(max_length=1000)
    """The products it changed, as they now stand."""
    stale: list[Barcode] = Field(max_length=1000)
    """Products it named that were already at this version or newer, left as they were."""


# -- mini-program orders: downlink cmd/order, uplink evt/order ----------------------------

OrderId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
DeviceName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class OrderLine(Body):
    barcode: Barcode
    name: ProductName
    quantity: int = Field(gt=0, le=999, strict=True)
    unit_price_fen: Fen


class OrderCollect(Body):
    """How the shopper collects: at the counter (staff hand it over against a collection
    slip), or from a slot of the vending cabinet that opens for the order."""

    mode: Literal["counter", "slot"]
    slot: int | None = Field(None, ge=1, le=64, strict=True)
    prestocked: bool = False
    """The goods are already in the slot: the order is ready as soon as it arrives."""

    @model_validator(mode="after")
    def _slot_for_slot_mode(self) -> OrderCollect:
        if self.mode == "slot" and self.slot is None:
            raise ValueError("a slot pickup names its slot")
        if self.mode == "counter" and (self.slot is not None or self.prestocked):
            raise ValueError("a counter pickup has no slot")
        return self


class PickupCredential(Body):
    code_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    """SHA-256, in hex, of `{order_id}:{code}`: the 6-digit code the shopper may type."""
    expires_at: Timestamp
    """After this the order can no longer be collected here (it becomes `expired`)."""


class OrderPlaced(Body):
    """`order.created` / `order.changed`: a paid mini-program order to collect at this device.
    `changed` replaces lines, collection and credential of an order not yet collected."""

    order_id: OrderId
    lines: list[OrderLine] = Field(min_length=1, max_length=100)
    paid_fen: Fen
    """Already paid online: the kiosk takes no money for it."""
    collect: OrderCollect
    pickup: PickupCredential


class OrderCancelled(Body):
    """`order.cancelled`: the order will not be collected (refunded online)."""

    order_id: OrderId
    reason: str = Field("", max_length=200)


class PickupToken(Body):
    """`order.pickup`: the body of the signed envelope a pickup QR carries (see
    `contract/pickup.py`). Signed by the backend's key like any downlink, with `exp`; valid
    only at `site`/`device`, verified offline, redeemed once."""

    order_id: OrderId
    site: DeviceName
    device: DeviceName


class OrderStatus(StrEnum):
    RECEIVED = "received"
    TICKET_PRINTED = "ticket_printed"
    READY = "ready"
    COLLECTED = "collected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    FAILED = "failed"


class OrderBody(Body):
    """`order.status`: where a mini-program order is at this device, committed before sent."""

    order_id: OrderId
    status: OrderStatus
    reason: str = Field("", max_length=200)
    at: Timestamp | None = None
    collected_by: Literal["qr", "code"] | None = None
    """How the shopper proved it was theirs (for `collected`)."""


class HealthDevice(Body):
    kind: str = Field(max_length=32)
    driver: str = Field(max_length=32)
    present: bool
    ok: bool
    detail: str = Field("", max_length=200)


class HealthBroker(Body):
    """The link to the cloud broker as the device sees it when it writes the report."""

    connected: bool
    address: str = Field(max_length=300)
    protocol: Literal["mqtt5", "mqtt311"]
    tls: bool
    connects: int = Field(ge=0, strict=True)
    last_error: str = Field("", max_length=500)


class HealthTask(Body):
    name: str = Field(max_length=64)
    role: Literal["core", "device"]
    running: bool
    restarts: int = Field(ge=0, strict=True)
    last_error: str = Field("", max_length=500)


class HealthBody(Body):
    """`health.report`: periodic telemetry (QoS 0, shed first when the store is full)."""

    devices: list[HealthDevice] = Field(max_length=16)
    queue_depth: int = Field(ge=0, strict=True)
    """Uplink messages not yet delivered to the broker."""
    oldest_unsent_age_s: float = Field(ge=0)
    disk_free_bytes: int = Field(ge=0, strict=True)
    db_bytes: int = Field(ge=0, strict=True)
    temperature_c: float | None = None
    sales_allowed: bool
    """False while the store is full or the disk nearly so: the kiosk opens no new sale."""
    store_alarm: str = Field("", max_length=200)
    """Why sales stopped (store or disk nearly full); empty while they are allowed."""
    broker: HealthBroker
    tasks: list[HealthTask] = Field(max_length=64)


class DeviceBoot(Body):
    """`device.boot`: the daemon started; committed with its boot row before READY."""

    boot_id: str = Field(min_length=1, max_length=64)
    version: str = Field(min_length=1, max_length=64)
    previous_boot_id: str | None = Field(None, max_length=64)
    previous_shutdown: Literal["none", "clean", "unclean"]
    """`unclean`: the previous run never stamped its stop (killed, crashed, power lost)."""


class DeviceState(Body):
    """`state.online` (the retained birth after each connect) and `state.offline` (the will,
    retained by the broker when the connection dies, or published on a clean stop)."""

    online: bool
    boot_id: str = Field(min_length=1, max_length=64)
    version: str = Field(min_length=1, max_length=64)
    config_version: int = Field(ge=0, strict=True)
    capabilities: list[str] = Field(max_length=16)
    broker: str = Field(max_length=300)
    """The broker endpoint (host:port) this connection goes to."""


# -- downlink: cfg at three scopes; uplink: evt/cfg -----------------------------------------

ConfigVersion = Annotated[int, Field(ge=1, le=2**53, strict=True)]


class ConfigScope(StrEnum):
    """Layers apply in this order over the local file: fleet, then site, then device."""

    FLEET = "fleet"
    SITE = "site"
    DEVICE = "device"


class DesiredConfig(Body):
    """`cfg.desired`: one scope's layer of remote config, retained on that scope's `cfg` topic.

    `config` is a partial daemon config (the same sections and keys as the TOML file) merged
    over the local file field by field; identity, paths and secrets stay the file's own, so a
    layer that names them is rejected whole. `version` grows with every change to the scope:
    an equal or older version is ignored and said so.
    """

    version: ConfigVersion
    config: dict[str, Any]
    grace_s: int | None = Field(None, ge=5, le=3600, strict=True)
    """How long the health gate waits after applying before it commits (default 120 s)."""


class ConfigStatus(StrEnum):
    APPLIED = "applied"
    DEFERRED = "deferred"
    """Waiting for the open sale or payment to end."""
    APPLYING = "applying"
    """Applied and inside its health gate; committed or rolled back within `grace_s`."""
    REJECTED = "rejected"
    ROLLED_BACK = "rolled_back"


class ScopeVersions(Body):
    fleet: int | None = Field(None, ge=1, strict=True)
    site: int | None = Field(None, ge=1, strict=True)
    device: int | None = Field(None, ge=1, strict=True)


class ConfigProblem(Body):
    key: str = Field(max_length=200)
    """The dotted key the problem is about (`checkout.inactivity_timeout_s`), or `<layer>`."""
    message: str = Field(max_length=500)


class ConfigState(Body):
    """`cfg.state`: where this device's configuration stands (retained on `evt/cfg`)."""

    desired: ScopeVersions
    """The newest version seen per scope."""
    applied: ScopeVersions
    """The versions the running, committed configuration is made of."""
    status: ConfigStatus
    scope: ConfigScope | None = None
    version: int | None = Field(None, ge=1, strict=True)
    """The layer this status is about."""
    error: ConfigProblem | None = None
    effective_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    """SHA-256 of the effective config (secrets included as their hash only)."""
    note: str = Field("", max_length=500)
    """What the device did with the last layer it received, when that changed nothing
    (`site v3 ignored: not newer than v4`)."""


# -- downlink: cmd/op; uplink: rsp/{request_id} -----------------------------------------


class OpRequest(Body):
    """Every operations command carries the id its replies are sent under."""

    request_id: RequestId


class ReprintOp(OpRequest):
    """`op.reprint`: print a receipt again (marked as a copy): the last sale, or `sale_id`."""

    sale_id: SaleId | None = None


class DrawerOpenOp(OpRequest):
    """`op.drawer.open`: kick the cash drawer; refused while a payment is open."""


class DoorUnlockOp(OpRequest):
    """`op.door.unlock`: release one door or slot for staff (restocking, goods that stuck);
    the release is committed before the relay is energised; refused while a payment is open."""

    slot: int = Field(ge=1, le=64, strict=True)
    """Which door or slot, 1..the release device's slots."""


class DiagnosticsOp(OpRequest):
    """`op.diagnostics`: status, device health, store figures and the last log lines."""

    log_lines: int = Field(50, ge=0, le=500, strict=True)


class StockResyncOp(OpRequest):
    """`op.stock.resync`: send the whole catalog as `stock.snapshot` pages on `evt/stock`."""

    page_size: int = Field(200, ge=1, le=1000, strict=True)


class LogLevelOp(OpRequest):
    """`op.log.level`: change the log level until `expires_s` have passed, then revert."""

    level: Literal["debug", "info", "warning", "error"]
    expires_s: int = Field(3600, ge=10, le=7 * 24 * 3600, strict=True)


class RestartOp(OpRequest):
    """`op.restart`: restart the daemon; `idle` waits for the current sale to end."""

    when: Literal["idle", "now"] = "idle"


class OpState(StrEnum):
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    """Expired before it could start."""


FINAL_OP_STATES = frozenset(
    {OpState.SUCCEEDED, OpState.FAILED, OpState.REJECTED, OpState.TIMED_OUT}
)


class OpReply(Body):
    """`op.reply`: a command's state, on `rsp/{request_id}` (and the MQTT 5 response topic)."""

    request_id: RequestId
    op: str = Field(max_length=64)
    """The command's envelope type (`op.reprint`)."""
    state: OpState
    reason: str = Field("", max_length=500)
    result: dict[str, Any] = Field(default_factory=dict)


class StockSnapshot(Body):
    """`stock.snapshot`: one page of the whole catalog, sent for `op.stock.resync`."""

    request_id: RequestId
    page: int = Field(ge=1, strict=True)
    pages: int = Field(ge=1, strict=True)
    items: list[StockLevel] = Field(max_length=1000)


# -- refunds: uplink evt/pay, downlink cmd/pay and cmd/op, record on evt/txn -------------


class RefundReason(StrEnum):
    GOODS_NOT_RELEASED = "goods_not_released"
    """Paid, but the door or slot never released the goods (refunded automatically)."""
    RETURNED = "returned"
    DAMAGED = "damaged"
    PRICE_ADJUSTMENT = "price_adjustment"
    OTHER = "other"


class RefundRequest(Body):
    """`refund.request`: refund `amount_fen` of a paid trade. `refund_no` is deterministic (sale
    and refund sequence), so a retried request reuses it and the channel refunds once
    (WeChat Pay `out_refund_no`, Alipay `out_request_no`)."""

    refund_no: TradeNo
    trade_no: TradeNo
    sale_id: SaleId
    amount_fen: Amount
    total_fen: Amount
    """What the trade collected: the channel checks the refund against it."""
    currency: Literal["CNY"] = "CNY"
    reason: RefundReason
    attempt: int = Field(ge=1, strict=True)


class RefundQuery(Body):
    """`refund.query`: what is the state of this refund? Answered with a `refund.result`."""

    refund_no: TradeNo
    trade_no: TradeNo
    amount_fen: Amount
    attempt: int = Field(ge=1, strict=True)


class RefundState(StrEnum):
    PROCESSING = "PROCESSING"
    """Accepted by the channel, money not back yet: keep querying on the schedule."""
    SUCCESS = "SUCCESS"
    CLOSED = "CLOSED"
    """The channel refused or closed it: no money moved. Escalated, never retried blindly."""
    ABNORMAL = "ABNORMAL"
    """The channel could not pay it out (e.g. the shopper's card was closed): staff must act."""
    NOT_FOUND = "NOT_FOUND"
    """The backend has no such refund (the request never reached it): the device sends it."""


class RefundResult(Body):
    """`refund.result`: the backend's answer to a refund request or query, signed."""

    refund_no: TradeNo
    trade_no: TradeNo
    amount_fen: Amount
    state: RefundState
    reason: str = Field("", max_length=200)
    refund_id: str = Field("", max_length=64)
    """The payment network's id for the refund."""
    succeeded_at: Timestamp | None = None


class RefundEscalated(Body):
    """`refund.escalated`: a refund ended closed or abnormal; staff and ops must look at it."""

    refund_no: TradeNo
    sale_id: SaleId
    trade_no: TradeNo
    amount_fen: Amount
    state: Literal["closed", "abnormal"]
    reason: str = Field("", max_length=200)


class RefundLine(Body):
    line_no: int = Field(ge=1, le=500, strict=True)
    quantity: int = Field(ge=1, le=999, strict=True)


class RefundCommand(Body):
    """`op.refund` on `cmd/op`: refund a paid sale, in full, by lines, or by an amount.

    Idempotent by `request_id`: the same request sent again (a new envelope id, or the same
    envelope replayed) answers with the refund it already started."""

    request_id: Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    sale_id: SaleId
    kind: Literal["full", "lines", "amount"]
    lines: list[RefundLine] = Field(default_factory=list, max_length=500)
    amount_fen: Amount | None = None
    reason: RefundReason = RefundReason.OTHER

    @model_validator(mode="after")
    def _what_to_refund(self) -> RefundCommand:
        if (self.kind == "lines") != bool(self.lines):
            raise ValueError("lines are given exactly when kind is lines")
        if (self.kind == "amount") != (self.amount_fen is not None):
            raise ValueError("amount_fen is given exactly when kind is amount")
        if len({line.line_no for line in self.lines}) != len(self.lines):
            raise ValueError("a line appears twice")
        return self


class RefundTxn(Body):
    """`txn.refunded`: a refund that succeeded, committed with the stock it returned."""

    sale_id: SaleId
    sale_no: int = Field(ge=1, strict=True)
    status: Literal["refunded"] = "refunded"
    refund_no: TradeNo
    refund_seq: int = Field(ge=1, le=50, strict=True)
    trade_no: TradeNo
    method: PayMethod
    currency: Literal["CNY"] = "CNY"
    amount_fen: Amount
    lines: list[TxnLine] = Field(max_length=500)
    """The lines (and quantities) refunded; empty for a refund by amount."""
    restocked: bool
    reason: RefundReason
    origin: Literal["ops", "technician", "auto"]
    refund_id: str = Field("", max_length=64)
    succeeded_at: Timestamp
    clock_synced: bool


# -- the daily settlement and reconciliation: uplink evt/report, downlink cmd/recon --------

BusinessDay = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]
Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Count = Annotated[int, Field(ge=0, strict=True)]


class CountTotal(Body):
    count: Count
    total_fen: Fen


class MethodTotal(Body):
    method: PayMethod
    count: Count
    total_fen: Fen


class SettlementReport(Body):
    """`report.settlement` (日结): the business day's figures, signed by the device's own
    Ed25519 identity key (the envelope's `sig`), so the backend can prove which kiosk
    reported what. A payment belongs to the day of its success time; `digest` is SHA-256
    (hex) over the day's `evt/txn` envelope ids ordered by txn sequence, each followed by a
    newline. `revision` grows each time the same day is reported again."""

    business_day: BusinessDay
    revision: int = Field(ge=1, strict=True)
    timezone: str = Field(min_length=1, max_length=64)
    cutover: str = Field(pattern=r"^\d{2}:\d{2}$")
    sales: CountTotal
    by_method: list[MethodTotal] = Field(max_length=8)
    refunds: CountTotal
    refunds_by_method: list[MethodTotal] = Field(max_length=8)
    net_fen: int = Field(ge=-100_000_000_000, le=100_000_000_000, strict=True)
    voided: dict[Literal["count"], Count]
    txn_count: Count
    first_txn_seq: int | None = Field(None, ge=1, strict=True)
    last_txn_seq: int | None = Field(None, ge=1, strict=True)
    digest: Digest
    identity_key: B64
    """The device's Ed25519 public key (base64), as registered at provisioning."""


class ReconTxn(Body):
    txn_id: str = Field(min_length=8, max_length=64)
    """The `evt/txn` envelope id."""
    amount_fen: Fen


class ReconFigures(Body):
    """`recon.figures` on `cmd/recon`: the backend's own count, totals and digest for this
    device and business day, with the transactions it holds, so the device can tell what is
    missing on either side."""

    business_day: BusinessDay
    revision: int = Field(ge=1, strict=True)
    """The settlement revision this answers."""
    txn_count: Count
    sales_fen: Fen
    refunds_fen: Fen
    digest: Digest
    txns: list[ReconTxn] = Field(max_length=5000)


class ReconDifference(Body):
    txn_id: str = Field(min_length=8, max_length=64)
    kind: Literal["local_only", "remote_only", "amount_mismatch"]
    txn_seq: int | None = Field(None, ge=1, strict=True)
    local_fen: Fen | None = None
    remote_fen: Fen | None = None


class ReconReport(Body):
    """`report.recon`: where reconciling a business day stands. `resending` means the
    device sent the differing transactions again (by txn sequence range) and asked again;
    `mismatch` is final for the rounds configured and lists what still differs."""

    business_day: BusinessDay
    state: Literal["reconciled", "resending", "mismatch"]
    round: int = Field(ge=1, strict=True)
    differences: list[ReconDifference] = Field(max_length=5000)
    resent_ranges: list[tuple[int, int]] = Field(default_factory=list, max_length=5000)


B = TypeVar("B", bound=Body)


# -- the catalogue of message types ------------------------------------------------------


MESSAGES: dict[str, tuple[Uplink | Downlink, type[Body], str]] = {
    "pay.micropay": (Uplink.PAY, MicropayRequest, MicropayRequest.__doc__ or ""),
    "pay.native_create": (Uplink.PAY, NativeCreateRequest, NativeCreateRequest.__doc__ or ""),
    "pay.query": (Uplink.PAY, QueryRequest, QueryRequest.__doc__ or ""),
    "pay.reverse": (Uplink.PAY, ReverseRequest, ReverseRequest.__doc__ or ""),
    "pay.close": (Uplink.PAY, CloseRequest, CloseRequest.__doc__ or ""),
    "pay.doubt": (Uplink.PAY, PayDoubt, PayDoubt.__doc__ or ""),
    "pay.result": (Downlink.PAY, PayResult, PayResult.__doc__ or ""),
    "txn.completed": (Uplink.TXN, TxnBody, TxnBody.__doc__ or ""),
    "txn.voided": (
        Uplink.TXN,
        TxnBody,
        "A cancelled or abandoned sale with items (status voided).",
    ),
    "txn.release": (Uplink.TXN, ReleaseReport, ReleaseReport.__doc__ or ""),
    "order.status": (Uplink.ORDER, OrderBody, OrderBody.__doc__ or ""),
    "order.release": (Uplink.ORDER, ReleaseReport, "An order's slot release (see txn.release)."),
    "order.created": (Downlink.ORDER, OrderPlaced, OrderPlaced.__doc__ or ""),
    "order.changed": (Downlink.ORDER, OrderPlaced, OrderPlaced.__doc__ or ""),
    "order.cancelled": (Downlink.ORDER, OrderCancelled, OrderCancelled.__doc__ or ""),
    "stock.update": (Downlink.STOCK, StockUpdate, StockUpdate.__doc__ or ""),
    "stock.applied": (Uplink.STOCK, StockApplied, StockApplied.__doc__ or ""),
    "health.report": (Uplink.HEALTH, HealthBody, HealthBody.__doc__ or ""),
    "device.boot": (Uplink.HEALTH, DeviceBoot, DeviceBoot.__doc__ or ""),
    "state.online": (Uplink.STATE, DeviceState, "The retained birth: the device is online."),
    "state.offline": (Uplink.STATE, DeviceState, "The will: the device went offline."),
    "cfg.desired": (Downlink.CFG, DesiredConfig, DesiredConfig.__doc__ or ""),
    "cfg.state": (Uplink.CFG, ConfigState, ConfigState.__doc__ or ""),
    "op.reprint": (Downlink.OP, ReprintOp, ReprintOp.__doc__ or ""),
    "op.drawer.open": (Downlink.OP, DrawerOpenOp, DrawerOpenOp.__doc__ or ""),
    "op.door.unlock": (Downlink.OP, DoorUnlockOp, DoorUnlockOp.__doc__ or ""),
    "op.diagnostics": (Downlink.OP, DiagnosticsOp, DiagnosticsOp.__doc__ or ""),
    "op.stock.resync": (Downlink.OP, StockResyncOp, StockResyncOp.__doc__ or ""),
    "op.log.level": (Downlink.OP, LogLevelOp, LogLevelOp.__doc__ or ""),
    "op.restart": (Downlink.OP, RestartOp, RestartOp.__doc__ or ""),
    "op.reply": (Uplink.RESPONSE, OpReply, OpReply.__doc__ or ""),
    "stock.snapshot": (Uplink.STOCK, StockSnapshot, StockSnapshot.__doc__ or ""),
    "refund.request": (Uplink.PAY, RefundRequest, RefundRequest.__doc__ or ""),
    "refund.query": (Uplink.PAY, RefundQuery, RefundQuery.__doc__ or ""),
    "refund.escalated": (Uplink.PAY, RefundEscalated, RefundEscalated.__doc__ or ""),
    "refund.result": (Downlink.PAY, RefundResult, RefundResult.__doc__ or ""),
    "op.refund": (Downlink.OP, RefundCommand, RefundCommand.__doc__ or ""),
    "txn.refunded": (Uplink.TXN, RefundTxn, RefundTxn.__doc__ or ""),
    "report.settlement": (Uplink.REPORT, SettlementReport, SettlementReport.__doc__ or ""),
    "report.recon": (Uplink.REPORT, ReconReport, ReconReport.__doc__ or ""),
    "recon.figures": (Downlink.RECON, ReconFigures, ReconFigures.__doc__ or ""),
}
"""Envelope `type` -> (topic kind, body model, what it means). The AsyncAPI source of truth."""


def parse_body(model: type[B], body: Any) -> B:
    """Validate an untrusted body; raises BodyError (never anything else) when it is bad."""
    if not isinstance(body, dict):
        raise BodyError("body is not a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise BodyError(first_problem(exc, "body")) from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise BodyError(f"invalid body: {type(exc).__name__}") from None


def envelope_body(envelope: Envelope, type_name: str, model: type[B]) -> B:
    """The body of a downlink that must be of `type_name`; raises BodyError, saying
    `unexpected type ...` or `malformed body: ...`, when it is not."""
    if envelope.type != type_name:
        raise BodyError(f"unexpected type {envelope.type!r}")
    try:
        return parse_body(model, envelope.body)
    except BodyError as exc:
        raise BodyError(f"malformed body: {exc}") from None


def dump_body(body: Body) -> dict[str, Any]:
    """The JSON-ready dict an envelope carries."""
    return body.model_dump(mode="json")
