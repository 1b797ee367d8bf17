"""`edged fleet status`: one row per device from the retained `state` and `evt/cfg` topics.

Both topics are retained, so a fresh subscriber receives the last word of every device at
once; the command listens until the broker has been quiet for a moment and builds the table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from edged.contract.bodies import BodyError, ConfigState, ScopeVersions, parse_body
from edged.contract.envelope import EnvelopeError, decode_envelope, parse_rfc3339
from edged.contract.topics import PREFIX, Uplink
from edged.fleetctl.broker import OperatorSession


@dataclass
class DeviceRow:
    site: str
    device: str
    online: bool | None = None
    version: str = ""
    config: ConfigState | None = None
    last_seen: datetime | None = None
    problems: list[str] = field(default_factory=list)

    def cells(self, now: datetime) -> list[str]:
        cfg = self.config
        age = "" if self.last_seen is None else _age((now - self.last_seen).total_seconds())
        return [
            f"{self.site}/{self.device}",
            {True: "online", False: "offline", None: "?"}[self.online],
            self.version or "?",
            _versions(cfg.desired) if cfg else "-",
            _versions(cfg.applied) if cfg else "-",
            (cfg.status.value + (f" ({cfg.error.key})" if cfg.error else "")) if cfg else "-",
            age,
        ]


HEADER = ["device", "link", "version", "desired f/s/d", "applied f/s/d", "config", "seen"]


def _versions(v: ScopeVersions) -> str:
    return "/".join("-" if n is None else str(n) for n in (v.fleet, v.site, v.device))


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{max(seconds, 0):.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def collect(
    session: OperatorSession, site: str = "+", *, quiet_s: float = 1.0, timeout_s: float = 10.0
) -> dict[tuple[str, str], DeviceRow]:
    state = f"{PREFIX}/{site}/+/{Uplink.STATE.value}"
    cfg = f"{PREFIX}/{site}/+/{Uplink.CFG.value}"
    session.subscribe(state, cfg)
    rows: dict[tuple[str, str], DeviceRow] = {}
    for message in session.messages(time.monotonic() + timeout_s, quiet_s=quiet_s):
        parts = message.topic.split("/")
        if len(parts) < 5 or parts[3].startswith("_"):
            continue
        row = rows.setdefault((parts[2], parts[3]), DeviceRow(parts[2], parts[3]))
        _read(row, "/".join(parts[4:]), message.payload)
    return rows


def _read(row: DeviceRow, kind: str, payload: bytes) -> None:
    if not payload:  # a cleared retained message
        return
    try:
        envelope = decode_envelope(payload)
    except EnvelopeError as exc:
        row.problems.append(f"{kind}: {exc}")
        return
    seen = parse_rfc3339(envelope.ts)
    if row.last_seen is None or seen > row.last_seen:
        row.last_seen = seen
    if kind == Uplink.STATE.value:
        row.online = envelope.body.get("online") is True
        row.version = str(envelope.body.get("version", ""))
        return
    try:
        row.config = parse_body(ConfigState, envelope.body)
    except BodyError as exc:
        row.problems.append(f"evt/cfg: {exc}")


def render(rows: dict[tuple[str, str], DeviceRow], now: datetime | None = None) -> str:
    moment = now or datetime.now(UTC)
    table = [HEADER] + [rows[key].cells(moment) for key in sorted(rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in table
    ]
    for key in sorted(rows):
        lines.extend(f"  {key[0]}/{key[1]}: {p}" for p in rows[key].problems)
    return "\n".join(lines)
