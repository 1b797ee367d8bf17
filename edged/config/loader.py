"""Read a TOML file, apply environment overrides, validate, and explain failures by key path."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edged.config.models import DaemonConfig

ENV_PREFIX = "EDGED_"
"""`EDGED_BROKER__PASSWORD=...` sets `broker.password`; `__` separates nested keys."""


class ConfigError(Exception):
    """A config that cannot be used; `problems` holds one `file: dotted.key: reason` per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> DaemonConfig:
    """Load `path` (or the development default when None) with environment overrides."""
    return load_config_and_raw(path, environ)[0]


def load_config_and_raw(
    path: Path | None, environ: Mapping[str, str] | None = None
) -> tuple[DaemonConfig, dict[str, Any]]:
    """The config and the dict it was validated from: remote layers are merged over the dict."""
    source = path.name if path else "<defaults>"
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError([f"{source}: file not found ({path})"]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{source}: cannot read: {exc}"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{source}: invalid TOML: {exc}"]) from None
    apply_env_overrides(raw, os.environ if environ is None else environ)
    return validate_config(raw, source), raw


def validate_config(raw: Mapping[str, Any], source: str) -> DaemonConfig:
    try:
        return DaemonConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(
            [f"{source}: {_dotted(err['loc'], raw)}: {_reason(err)}" for err in exc.errors()]
        ) from None


def apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX:
            continue
        keys = name[len(ENV_PREFIX) :].lower().split("__")
        node = raw
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[keys[-1]] = value


def _dotted(loc: tuple[int | str, ...], raw: Mapping[str, Any]) -> str:
    """Join a pydantic error location, dropping the discriminator tags unions add to it."""
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(node, Mapping) and node.get("driver") == item and item not in node:
            continue
        parts.append(f"[{item}]" if isinstance(item, int) else str(item))
        node = node.get(item) if isinstance(node, Mapping) else None
    return ".".join(parts).replace(".[", "[") or "<root>"


def _reason(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    return str(err["msg"]).removeprefix("Value error, ")
