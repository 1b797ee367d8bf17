"""The one place that knows every topic name of the contract."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

PREFIX = "edge/v1"
SITE_SCOPE = "_site"
FLEET_SCOPE = "_fleet"


class Uplink(StrEnum):
    STATE = "state"
    TXN = "evt/txn"
    PAY = "evt/pay"
    ORDER = "evt/order"
    STOCK = "evt/stock"
    CFG = "evt/cfg"
    HEALTH = "evt/health"
    REPORT = "evt/report"
    RESPONSE = "rsp"


class Downlink(StrEnum):
    PAY = "cmd/pay"
    ORDER = "cmd/order"
    STOCK = "cmd/stock"
    OP = "cmd/op"
    RECON = "cmd/recon"
    CFG = "cfg"


class Priority(IntEnum):
    """Lower drains first: money before configuration before telemetry."""

    MONEY = 0
    CONTROL = 1
    TELEMETRY = 9


@dataclass(frozen=True)
class UplinkRule:
    qos: int
    retain: bool
    priority: Priority


UPLINK_RULES: dict[Uplink, UplinkRule] = {
    Uplink.STATE: UplinkRule(1, True, Priority.CONTROL),
    Uplink.TXN: UplinkRule(1, False, Priority.MONEY),
    Uplink.PAY: UplinkRule(1, False, Priority.MONEY),
    Uplink.ORDER: UplinkRule(1, False, Priority.MONEY),
    Uplink.STOCK: UplinkRule(1, False, Priority.CONTROL),
    Uplink.CFG: UplinkRule(1, True, Priority.CONTROL),
    Uplink.HEALTH: UplinkRule(0, False, Priority.TELEMETRY),
    Uplink.REPORT: UplinkRule(1, False, Priority.MONEY),
    Uplink.RESPONSE: UplinkRule(1, False, Priority.CONTROL),
}

SIGNED_DOWNLINK: frozenset[Downlink] = frozenset(Downlink)
"""Every downlink kind can move money or change the device, so every one must be signed."""


@dataclass(frozen=True)
class DownlinkAddress:
    kind: Downlink
    scope: str
    """`device`, `site` or `fleet`: group config is addressed to more than one device."""


@dataclass(frozen=True)
class DeviceTopics:
    site: str
    device: str

    @property
    def root(self) -> str:
        return f"{PREFIX}/{self.site}/{self.device}"

    def uplink(self, kind: Uplink, request_id: str | None = None) -> str:
        if kind is Uplink.RESPONSE:
            if not request_id:
                raise ValueError("a response topic needs a request id")
            return f"{self.root}/rsp/{request_id}"
        return f"{self.root}/{kind.value}"

    def downlink(self, kind: Downlink) -> str:
        return f"{self.root}/{kind.value}"

    def subscriptions(self) -> list[str]:
        """Everything the device listens to, group config included."""
        own = [self.downlink(kind) for kind in Downlink]
        return [*own, f"{PREFIX}/{self.site}/{SITE_SCOPE}/cfg", f"{PREFIX}/{FLEET_SCOPE}/cfg"]

    def classify(self, topic: str) -> DownlinkAddress | None:
        """Which downlink a topic is, or None when it is not addressed to this device."""
        if topic == f"{PREFIX}/{FLEET_SCOPE}/cfg":
            return DownlinkAddress(Downlink.CFG, "fleet")
        if topic == f"{PREFIX}/{self.site}/{SITE_SCOPE}/cfg":
            return DownlinkAddress(Downlink.CFG, "site")
        prefix = self.root + "/"
        if not topic.startswith(prefix):
            return None
        try:
            return DownlinkAddress(Downlink(topic[len(prefix) :]), "device")
        except ValueError:
            return None


def config_topic(scope: str, site: str = "", device: str = "") -> str:
    """The retained `cfg` topic of a scope: `fleet`, `site` (needs `site`) or `device`."""
    if scope == "fleet":
        return f"{PREFIX}/{FLEET_SCOPE}/cfg"
    if not site:
        raise ValueError(f"a {scope} config topic needs a site")
    if scope == "site":
        return f"{PREFIX}/{site}/{SITE_SCOPE}/cfg"
    if scope == "device" and device:
        return f"{PREFIX}/{site}/{device}/cfg"
    raise ValueError(f"unknown config scope {scope!r} (fleet, site or device with a device id)")


def scope_audience(scope: str, site: str, device: str) -> str:
    """The `device` field an envelope must carry on a topic of this scope.

    Device topics: the device id. Site config: `<site>/_site`. Fleet config: `_fleet`.
    Binding the audience into the signed bytes stops a message signed for one device or
    site from being accepted when republished on another's topic.
    """
    if scope == "fleet":
        return FLEET_SCOPE
    if scope == "site":
        return f"{site}/{SITE_SCOPE}"
    return device


def backend_uplink_filter(site: str = "+", device: str = "+") -> str:
    """What a backend subscribes to (behind `$share/backend/` on a clustered broker)."""
    return f"{PREFIX}/{site}/{device}/evt/#"
