"""Signed downlink envelopes an operator sends: config layers (`cfg.desired`) and commands."""

from __future__ import annotations

import json
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edged.contract.bodies import MESSAGES, Body, BodyError, DesiredConfig, dump_body, parse_body
from edged.contract.envelope import Envelope, make_envelope
from edged.contract.ids import new_id
from edged.contract.signing import sign_envelope
from edged.contract.topics import PREFIX, Downlink, config_topic, scope_audience

DEFAULT_TTL = timedelta(days=30)
"""A retained layer must outlive the longest time a kiosk may stay offline."""
OP_TTL = timedelta(minutes=10)


class LayerFileError(ValueError):
    """A config layer file that cannot be read or parsed."""


@dataclass(frozen=True)
class Scope:
    """`fleet`, `site:SITE` or `device:SITE/DEVICE`, as the operator writes it."""

    kind: str
    site: str = ""
    device: str = ""

    @classmethod
    def parse(cls, text: str) -> Scope:
        kind, _, rest = text.partition(":")
        if kind == "fleet" and not rest:
            return cls("fleet")
        if kind == "site" and rest and "/" not in rest:
            return cls("site", rest)
        if kind == "device":
            site, _, device = rest.partition("/")
            if site and device and "/" not in device:
                return cls("device", site, device)
        raise ValueError(f"scope {text!r}: write fleet, site:SITE or device:SITE/DEVICE")

    @property
    def topic(self) -> str:
        return config_topic(self.kind, self.site, self.device)

    @property
    def audience(self) -> str:
        return scope_audience(self.kind, self.site, self.device)

    def __str__(self) -> str:
        if self.kind == "fleet":
            return "fleet"
        return f"site:{self.site}" if self.kind == "site" else f"device:{self.site}/{self.device}"


def read_layer(path: Path) -> dict[str, Any]:
    """A layer from a TOML or JSON file (by its suffix), as a dict."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LayerFileError(f"{path}: cannot read: {exc}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LayerFileError(
            f"{path}: not valid {path.suffix.lstrip('.') or 'TOML'}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise LayerFileError(f"{path}: a layer is a table of config sections")
    return data


def _signed(
    type_name: str, audience: str, body: Body, key: Ed25519PrivateKey, ttl: timedelta
) -> Envelope:
    now = datetime.now(UTC)
    envelope = make_envelope(
        type=type_name,
        device=audience,
        seq=time.time_ns() // 1_000_000,
        body=dump_body(body),
        now=now,
        clock_synced=True,
        ttl=ttl,
    )
    return sign_envelope(envelope, key)


def config_layer(
    scope: Scope,
    version: int,
    layer: dict[str, Any],
    key: Ed25519PrivateKey,
    *,
    grace_s: int | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> Envelope:
    try:
        body = parse_body(DesiredConfig, {"version": version, "config": layer, "grace_s": grace_s})
    except BodyError as exc:
        raise ValueError(f"cannot sign this layer: {exc}") from None
    return _signed("cfg.desired", scope.audience, body, key, ttl)


OP_TYPES: dict[str, str] = {
    type_name.removeprefix("op."): type_name
    for type_name, (kind, _model, _doc) in MESSAGES.items()
    if kind is Downlink.OP
}
"""Command name as the operator types it (`reprint`, `drawer.open`) -> envelope type."""


def op_command(
    site: str,
    device: str,
    command: str,
    args: dict[str, Any],
    key: Ed25519PrivateKey,
    *,
    request_id: str | None = None,
    ttl: timedelta = OP_TTL,
) -> Envelope:
    """A signed operations command; raises ValueError for an unknown command or bad args."""
    type_name = OP_TYPES.get(command)
    if type_name is None:
        raise ValueError(f"unknown command {command!r}; known: {', '.join(sorted(OP_TYPES))}")
    model = MESSAGES[type_name][1]
    try:
        body = parse_body(model, {"request_id": request_id or new_id().replace("-", ""), **args})
    except BodyError as exc:
        raise ValueError(f"{command}: {exc}") from None
    return _signed(type_name, device, body, key, ttl)


def op_topic(site: str, device: str) -> str:
    return f"{PREFIX}/{site}/{device}/{Downlink.OP.value}"
