"""Read a TOML file, apply environment overrides, validate, and explain failures by key path."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edged.config.models import DaemonConfig
from edged.config.problems import Problem, check_config_dict
from edged.config.usable import usability_problems

ENV_PREFIX = "EDGED_"
"""`EDGED_BROKER__PASSWORD=...` sets `broker.password`; `__` separates nested keys."""


class ConfigError(Exception):
    """A config that cannot be used; `problems` holds one `file: dotted.key: reason` per line
    (`environment EDGED_X: dotted.key: reason` when the value came from the environment)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_config(
    path: Path | None,
    environ: Mapping[str, str] | None = None,
    *,
    usable: bool = False,
    user: str | None = None,
) -> DaemonConfig:
    """Load `path` (or the development default when None) with environment overrides.

    `usable=True` also checks what would fail at run time on this machine (files exist and
    are readable by `user`, certificates parse and match their keys): `check-config` and
    `edged run` ask for it, commands that only need the socket path do not."""
    return load_config_and_raw(path, environ, usable=usable, user=user)[0]


def load_config_and_raw(
    path: Path | None,
    environ: Mapping[str, str] | None = None,
    *,
    usable: bool = False,
    user: str | None = None,
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
    origin = apply_env_overrides(raw, os.environ if environ is None else environ)
    config, problems = check_config_dict(raw, origin)
    if config is not None and usable:
        problems = usability_problems(config, user=user)
    if problems or config is None:
        raise ConfigError([p.render(source) for p in problems])
    return config, raw


def validate_config(raw: Mapping[str, Any], source: str) -> DaemonConfig:
    """Validate a config dict (a pushed layer, a test's dict); raises ConfigError."""
    config, problems = check_config_dict(raw)
    if config is None:
        raise ConfigError([p.render(source) for p in problems])
    return config


def apply_env_overrides(
    raw: dict[str, Any], environ: Mapping[str, str]
) -> dict[tuple[str, ...], str]:
    """Set `EDGED_A__B=v` as `raw["a"]["b"] = "v"`; returns which variable set which key."""
    origin: dict[tuple[str, ...], str] = {}
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
        origin[tuple(keys)] = name
    return origin


__all__ = ["ConfigError", "Problem", "apply_env_overrides", "load_config", "validate_config"]
