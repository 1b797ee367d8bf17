"""Remote config layers: merged over the local file field by field, never over its identity.

Fleet operations push partial configs at three scopes (fleet, site, device). The effective
config is the local file, then fleet, then site, then device. The file stays authoritative
for who the device is, where its data lives and its secrets: a layer that names any of
those is refused whole, with the keys it named. The device and the operator's
`edged fleet sign` use these same functions, so a layer is judged the same on both sides.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from edged.config.loader import ConfigError, validate_config
from edged.config.models import DaemonConfig

LOCAL_ONLY: tuple[str, ...] = (
    "device",
    "paths",
    "broker.username",
    "broker.password",
    "broker.client_id",
    "broker.tls.cert_file",
    "broker.tls.key_file",
    "security.technician_token",
)
"""Dotted keys (and whole sections) that only the local file may set."""


def merge_layers(base: Mapping[str, Any], *layers: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with each layer laid over it in turn: tables merge key by key, values replace.

    A table that changes its `driver` (a discriminated device section) replaces the whole
    table, since the old driver's keys mean nothing to the new one.
    """
    merged: dict[str, Any] = copy.deepcopy(dict(base))
    for layer in layers:
        _merge_into(merged, layer)
    return merged


def _merge_into(target: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        current = target.get(key)
        if (
            isinstance(value, Mapping)
            and isinstance(current, dict)
            and value.get("driver", current.get("driver")) == current.get("driver")
        ):
            _merge_into(current, value)
        else:
            target[key] = copy.deepcopy(value)


def local_only_keys(layer: Mapping[str, Any]) -> list[str]:
    """The keys of `layer` that only the local file may set, dotted, sorted."""
    named: list[str] = []
    for dotted in _dotted_keys(layer):
        if any(dotted == key or dotted.startswith(key + ".") for key in LOCAL_ONLY):
            named.append(dotted)
    return sorted(named)


def _dotted_keys(node: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            keys.extend(_dotted_keys(value, dotted + "."))
        else:
            keys.append(dotted)
    return keys


SCOPE_ORDER: tuple[str, ...] = ("fleet", "site", "device")
"""Merge order of the remote layers over the local file."""

Layers = dict[str, dict[str, Any]]
"""scope -> {"version": N, "layer": {...}}: the remote layers a config is made of."""


def ordered(layers: Layers) -> list[tuple[str, int, dict[str, Any]]]:
    """(scope, version, layer) in merge order: fleet, then site, then device."""
    return [
        (scope, int(layers[scope]["version"]), layers[scope]["layer"])
        for scope in SCOPE_ORDER
        if scope in layers
    ]


def build_config(file_raw: Mapping[str, Any], layers: Layers) -> DaemonConfig:
    """The file with `layers` laid over it, validated like `edged check-config` validates.

    Raises ConfigError naming each problem `<scope> v<N>: dotted.key: reason` after the layer
    that brought it, so an operator reads the same messages for a pushed layer as for a file.
    """
    merged: dict[str, Any] = copy.deepcopy(dict(file_raw))
    for scope, version, layer in ordered(layers):
        source = f"{scope} v{version}"
        forbidden = local_only_keys(layer)
        if forbidden:
            raise ConfigError(
                [f"{source}: {key}: only the local config file may set this" for key in forbidden]
            )
        security = layer.get("security")
        if isinstance(security, Mapping) and security.get("trusted_keys") == []:
            raise ConfigError(
                [
                    f"{source}: security.trusted_keys: may not be empty: no signed message, "
                    "this layer's undoing included, could reach the device again"
                ]
            )
        merged = merge_layers(merged, layer)
        validate_config(merged, source)
    return validate_config(merged, "<file>")


def origins(file_raw: Mapping[str, Any], layers: Layers) -> dict[str, str]:
    """dotted key -> where its value comes from (`file`, `fleet v3`, ...) for every key set."""
    found: dict[str, str] = {}
    _walk(file_raw, "", "file", found)
    for scope, version, layer in ordered(layers):
        _walk(layer, "", f"{scope} v{version}", found)
    return found


def _walk(node: Mapping[str, Any], prefix: str, origin: str, found: dict[str, str]) -> None:
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            _walk(value, dotted + ".", origin, found)
        else:
            found[dotted] = origin


def effective_hash(config: DaemonConfig) -> str:
    """SHA-256 of the effective config: equal configs hash equal, secrets enter as hashes."""
    data = config.model_dump(mode="json")
    text = json.dumps(_mask(config, data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _mask(config: DaemonConfig, data: dict[str, Any]) -> dict[str, Any]:
    secrets: Sequence[tuple[str, ...]] = (
        ("broker", "password"),
        ("security", "technician_token"),
    )
    for path in secrets:
        node: Any = config
        for part in path:
            node = getattr(node, part, None)
        if node is None:
            continue
        digest = hashlib.sha256(node.get_secret_value().encode()).hexdigest()
        holder = data
        for part in path[:-1]:
            holder = holder[part]
        holder[path[-1]] = f"sha256:{digest}"
    return data
