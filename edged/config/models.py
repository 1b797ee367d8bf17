"""The daemon's whole configuration as pydantic models.

Every default here is the development default: a daemon started with no config file runs
on simulated devices, an embedded broker and a simulated cloud, with its data in ./var.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from hal.config import (
    CameraConfig,
    DisplayConfig,
    NoRelease,
    PrinterConfig,
    ReleaseConfig,
    ScannerConfig,
    SimCamera,
    SimDisplay,
    SimPrinter,
    SimScanner,
)

Fen = Annotated[int, Field(ge=0, strict=True)]


class Section(BaseModel):
    """Unknown keys are typos in a config file, so every section forbids them."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceIdentity(Section):
    site: str = Field("dev-site", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    id: str = Field("dev-kiosk", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    kind: Literal["kiosk", "vending"] = "kiosk"
    name: str = "Development kiosk"


class Paths(Section):
    data_dir: Path = Path("var")
    control_socket: Path | None = None
    """Defaults to `<data_dir>/edged.sock`."""

    def socket_path(self) -> Path:
        return self.control_socket or self.data_dir / "edged.sock"


class TlsFiles(Section):
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_skip_hostname_check: bool = False


class BrokerEndpoint(Section):
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(ge=1, le=65535)
    server_name: str | None = Field(None, min_length=1, max_length=253)
    """The name the broker's TLS certificate carries, when it is not `host`."""


class Broker(Section):
    mode: Literal["embedded", "external"] = "embedded"
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)
    """0 with the embedded broker means: pick a free loopback port."""
    endpoints: list[BrokerEndpoint] = Field(default_factory=list, max_length=32)
    """External broker, several addresses (cluster nodes): tried in this order, the link stays
    on the one that works. Empty: the one endpoint `host`:`port`."""
    protocol: Literal["mqtt5", "mqtt311"] | None = None
    """Unset: MQTT 5, falling back to 3.1.1 when the broker lacks it (the embedded broker
    speaks 5 when it is Mosquitto, 3.1.1 when it is amqtt)."""
    embedded_server: Literal["auto", "mosquitto", "amqtt"] = "auto"
    """The development broker of `mode = "embedded"`: Mosquitto when installed, else amqtt
    (the `demo` extra)."""
    keepalive_s: int = Field(30, ge=5, le=3600)
    session_expiry_s: int = Field(7 * 24 * 3600, ge=0)
    client_id: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    tls: TlsFiles | None = None
    allow_plain_tcp: bool = True
    """Production configs set this false, so a missing [broker.tls] is an error, not a leak."""

    @model_validator(mode="after")
    def _tls_required(self) -> Broker:
        if self.mode == "external" and self.tls is None and not self.allow_plain_tcp:
            raise ValueError("allow_plain_tcp is false, so [broker.tls] with ca_file is required")
        if self.mode == "embedded" and self.endpoints:
            raise ValueError('endpoints are for an external broker; set mode = "external"')
        if self.mode == "embedded" and self.protocol == "mqtt5" and self.embedded_server == "amqtt":
            raise ValueError(
                'protocol: "mqtt5" cannot work with embedded_server = "amqtt", which speaks '
                'MQTT 3.1.1 only: set protocol = "mqtt311", or use Mosquitto'
            )
        if self.mode == "embedded" and self.tls is not None:
            raise ValueError(
                "tls: the embedded broker listens on loopback without TLS; remove [broker.tls] "
                'or set mode = "external"'
            )
        return self

    def endpoint_list(self) -> list[BrokerEndpoint]:
        """Every address to try, in order (the single `host`:`port` when none are listed)."""
        return list(self.endpoints) or [BrokerEndpoint(host=self.host, port=self.port or 1883)]


class Link(Section):
    inflight_window: int = Field(256, ge=1, le=65535)
    """Outbox messages published but not yet marked delivered: the most a crash re-sends.
    Also capped by the broker's MQTT 5 Receive Maximum. Below ~128 a backlog drains slowly,
    because each slot waits for its delivered mark to be committed (measured: bench drain)."""
    retention_hours: float = Field(72, gt=0)
    max_downlink_bytes: int = Field(64 * 1024, ge=1024)
    reconnect_min_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(60, gt=0)
    reconnect_stable_s: float = Field(10, gt=0)
    """Only a connection that lasted this long resets the reconnect back-off."""

    @model_validator(mode="after")
    def _backoff_range(self) -> Link:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError(
                f"reconnect_min_s ({self.reconnect_min_s:g}) is greater than reconnect_max_s "
                f"({self.reconnect_max_s:g})"
            )
        return self


class StoreLimits(Section):
    max_db_mb: int = Field(512, ge=8)
    shed_telemetry_at_pct: int = Field(80, ge=10, le=100)
    stop_sales_at_pct: int = Field(95, ge=10, le=100)

    @model_validator(mode="after")
    def _shed_before_stop(self) -> StoreLimits:
        if self.shed_telemetry_at_pct > self.stop_sales_at_pct:
            raise ValueError(
                f"shed_telemetry_at_pct ({self.shed_telemetry_at_pct}) is above "
                f"stop_sales_at_pct ({self.stop_sales_at_pct}): telemetry must be shed before "
                "sales stop"
            )
        return self


def _raw_key(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} must be base64") from None
    if len(raw) != 32:
        raise ValueError(f"{what} must be 32 raw bytes in base64, got {len(raw)} bytes")
    return raw


def _ed25519(text: str) -> str:
    _raw_key(text, "Ed25519 public key")
    return text


def _x25519(text: str) -> str:
    _raw_key(text, "X25519 public key")
    return text


Ed25519Key = Annotated[str, AfterValidator(_ed25519)]
X25519Key = Annotated[str, AfterValidator(_x25519)]


class Security(Section):
    trusted_keys: list[Ed25519Key] = Field(default_factory=list)
    """Base64 Ed25519 public keys allowed to sign downlink messages."""
    backend_seal_key: X25519Key | None = None
    """Base64 X25519 public key of the backend; payment codes are sealed to it."""
    max_clock_skew_s: int = Field(300, ge=0)
    technician_token: SecretStr | None = None


class Payments(Section):
    currency: Literal["CNY"] = "CNY"
    deadline_s: float = Field(40, ge=5, le=300)
    """How long a shopper may confirm on the phone before the kiosk reverses (WeChat: 30-45 s)."""
    query_interval_s: float = Field(3, gt=0, le=30)
    reverse_timeout_s: float = Field(60, gt=0)
    native_qr_ttl_s: int = Field(300, ge=10, le=7200)
    max_sale_fen: Fen = 1_000_000


RestockReason = Literal["goods_not_released", "returned", "damaged", "price_adjustment", "other"]


class Refunds(Section):
    query_schedule_s: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [60.0, 300.0, 600.0, 1200.0, 1800.0], min_length=1, max_length=20
    )
    """Waits before each query of an unfinished refund (WeChat Pay's guidance: 1, 5, 10, 20,
    30 min); after the last one the last wait repeats."""
    restock_reasons: list[RestockReason] = Field(
        default_factory=lambda: list[RestockReason](["goods_not_released", "returned"])
    )
    """Refunds by lines with these reasons put the refunded quantities back into stock."""
    max_per_sale: int = Field(50, ge=1, le=50)


class Settlement(Section):
    cutover: str = Field("04:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    """Local time the business day changes (日结): sales before it belong to the day before."""
    timezone: str | None = None
    """IANA zone of the shop, e.g. `Asia/Shanghai`; the board's local zone when unset."""
    identity_key: Path | None = None
    """The device's Ed25519 identity key (made by firmware-tools/make-identity.sh); it signs
    the settlement. Defaults to `<data_dir>/identity.key`, created on first use."""
    recon_rounds: int = Field(3, ge=1, le=20)
    """Resend-and-ask rounds before a day that still differs is left `mismatch`."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str | None) -> str | None:
        if zone is not None:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown time zone {zone!r}: an IANA name like Asia/Shanghai"
                ) from None
        return zone


class Checkout(Section):
    shop_name: str = "edged demo shop"
    inactivity_timeout_s: float = Field(120, gt=0)
    catalog_seed: Path | None = None
    """CSV of barcode,name,price_fen,stock loaded into an empty catalog at start."""
    order_url: str = "https://mp.example.com/o/"


class Vending(Section):
    """How a vending counter hands goods over (the `[release]` device does the unlocking)."""

    door_slot: int = Field(1, ge=1, le=64)
    """The slot a paid vending sale releases (a counter with one door: 1)."""
    open_within_s: float = Field(15, ge=1, le=300)
    """The lock stays released this long; a door not opened by then relocks and the sale is
    marked for refund."""
    left_open_s: float = Field(60, ge=5, le=3600)
    """A door open longer than this raises the left-open alarm."""
    restart_window_s: float = Field(60, ge=0, le=600)
    """After a crash between payment and unlock, unlock at restart only this soon after the
    payment (the shopper may still be there); later, the sale is marked for refund."""


class Orders(Section):
    """Mini-program orders collected at this device."""

    print_tickets: bool = True
    """Print a pick ticket when an order arrives, so staff can prepare it."""


class Cloud(Section):
    mode: Literal["simulated", "remote"] = "simulated"
    """`simulated` runs the simulated mini-program backend beside the daemon (development)."""


class Health(Section):
    interval_s: float = Field(30, ge=1)


class ScreenTls(Section):
    cert_file: Path
    key_file: Path


class Screen(Section):
    """The kiosk's touch-screen page (`/`) and the technician page (`/tech`)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    """Loopback unless the page must be reached from elsewhere; then TLS or the token."""
    port: int = Field(8080, ge=0, le=65535)
    """0 picks a free port (the daemon logs it and `edged status` shows it)."""
    language: Literal["zh", "en"] = "zh"
    """The language a page starts in; the shopper can switch."""
    tls: ScreenTls | None = None

    def on_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


class DaemonConfig(Section):
    device: DeviceIdentity = DeviceIdentity()
    paths: Paths = Paths()
    broker: Broker = Broker()
    link: Link = Link()
    store: StoreLimits = StoreLimits()
    security: Security = Security()
    scanner: ScannerConfig = SimScanner()
    camera: CameraConfig = SimCamera()
    printer: PrinterConfig = SimPrinter()
    display: DisplayConfig = SimDisplay()
    release: ReleaseConfig = NoRelease()
    """The door or slot locks of a vending counter; `none` on a kiosk."""
    payments: Payments = Payments()
    refunds: Refunds = Refunds()
    settlement: Settlement = Settlement()
    checkout: Checkout = Checkout()
    vending: Vending = Vending()
    orders: Orders = Orders()
    cloud: Cloud = Cloud()
    health: Health = Health()
    screen: Screen = Screen()

    @model_validator(mode="after")
    def _screen_off_loopback_is_protected(self) -> DaemonConfig:
        screen = self.screen
        if (
            screen.enabled
            and not screen.on_loopback()
            and screen.tls is None
            and self.security.technician_token is None
        ):
            raise ValueError(
                f"screen.host {screen.host!r} is not loopback: "
                "set [screen.tls] or security.technician_token"
            )
        return self
