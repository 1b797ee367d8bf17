"""Validate a config dict and say, per problem, where, what was wrong and what was meant.

`check_config_dict` is the one validation function: the TOML loader uses it, and so can a
pushed remote layer, so every source of config gets the same messages. A problem names its
dotted key with list indexes (`security.trusted_keys[1]`), suggests the nearest known key or
value (difflib), lists the valid choices of a discriminated section (`printer.driver`), and
names the environment variable when the value came from one.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from edged.config.models import DaemonConfig

Loc = tuple[int | str, ...]
EnvOrigin = Mapping[tuple[str, ...], str]
"""Which environment variable set a key: `("broker", "port") -> "EDGED_BROKER__PORT"`."""


@dataclass(frozen=True)
class Problem:
    key: str
    """Dotted key with list indexes, `<root>` for the whole file."""
    message: str
    env: str | None = None
    """The environment variable the offending value came from, when it did."""

    def render(self, source: str) -> str:
        """One line: `file: key: message`, or `environment VAR: key: message`."""
        where = f"environment {self.env}" if self.env else source
        return f"{where}: {self.key}: {self.message}"


def check_config_dict(
    raw: Mapping[str, Any], env: EnvOrigin | None = None
) -> tuple[DaemonConfig | None, list[Problem]]:
    """The validated config, or None and every problem, each path-qualified."""
    try:
        return DaemonConfig.model_validate(raw), []
    except ValidationError as exc:
        return None, [_problem(err, raw, env or {}) for err in exc.errors()]


def _problem(err: Any, raw: Mapping[str, Any], env: EnvOrigin) -> Problem:
    loc: Loc = tuple(err["loc"])
    keys = _keys(loc, raw)
    kind = err["type"]
    model = _model_at(keys[:-1] if kind == "extra_forbidden" else keys)
    if kind == "extra_forbidden":
        message = "unknown key" + _did_you_mean(str(keys[-1]), _field_names(model, raw, keys))
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "union_tag_not_found":
        tags = _tags(keys)
        message = "required key is missing" + (f"; choose one of {_quoted(tags)}" if tags else "")
        keys = (*keys, "driver")
    elif kind == "union_tag_invalid":
        tags = _tags(keys)
        given = str(err["ctx"]["tag"])
        message = f"{given!r} is not a driver; choose one of {_quoted(tags)}"
        message += _did_you_mean(given, tags)
        keys = (*keys, "driver")
    elif kind == "literal_error":
        choices = _literal_choices(keys)
        message = f"must be one of {_quoted(choices)}" if choices else str(err["msg"])
        if choices and isinstance(err.get("input"), str):
            message += _did_you_mean(err["input"], choices)
    else:
        message = str(err["msg"]).removeprefix("Value error, ")
    return Problem(_dotted(keys), message, _env_var(keys, env))


def _keys(loc: Loc, raw: Mapping[str, Any]) -> Loc:
    """The error location without the discriminator tags pydantic inserts for unions."""
    out: list[int | str] = []
    node: Any = raw
    for item in loc:
        if isinstance(node, Mapping) and node.get("driver") == item and item not in node:
            continue
        out.append(item)
        if isinstance(node, Mapping):
            node = node.get(item)
        elif isinstance(node, list) and isinstance(item, int) and item < len(node):
            node = node[item]
        else:
            node = None
    return tuple(out)


def _dotted(keys: Loc) -> str:
    parts = [f"[{k}]" if isinstance(k, int) else str(k) for k in keys]
    return ".".join(parts).replace(".[", "[") or "<root>"


def _env_var(keys: Loc, env: EnvOrigin) -> str | None:
    names = tuple(str(k) for k in keys)
    for length in range(len(names), 0, -1):
        if names[:length] in env:
            return env[names[:length]]
    return None


def _did_you_mean(given: str, known: list[str]) -> str:
    close = difflib.get_close_matches(given, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _quoted(values: list[str]) -> str:
    return ", ".join(repr(v) for v in values)


# -- walking the models along a location ---------------------------------------------------


def _members(annotation: Any) -> list[Any]:
    """The types an annotation may hold: Optional and unions split, Annotated unwrapped."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _models(annotation: Any) -> list[type[BaseModel]]:
    return [m for m in _members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]


def _candidates(keys: Loc) -> list[type[BaseModel]]:
    """Every model that may sit at `keys` (several for a discriminated section)."""
    models: list[type[BaseModel]] = [DaemonConfig]
    for key in keys:
        if isinstance(key, int):
            continue  # an index into a list: the element type is handled with its field
        found: list[type[BaseModel]] = []
        for model in models:
            field = model.model_fields.get(key)
            if field is None:
                continue
            annotation = field.annotation
            for member in _members(annotation):
                if typing.get_origin(member) is list:
                    found.extend(_models(typing.get_args(member)[0]))
                elif isinstance(member, type) and issubclass(member, BaseModel):
                    found.append(member)
        models = found
    return models


def _driver(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("driver")
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return str(args[0]) if args else None


def _model_at(keys: Loc) -> list[type[BaseModel]]:
    return _candidates(keys)


def _field_names(models: list[type[BaseModel]], raw: Mapping[str, Any], keys: Loc) -> list[str]:
    """Known keys of the section that holds the unknown one (the chosen driver's, if any)."""
    node: Any = raw
    for key in keys[:-1]:
        node = node.get(key) if isinstance(node, Mapping) else None
    driver = node.get("driver") if isinstance(node, Mapping) else None
    chosen = [m for m in models if _driver(m) == driver] or models
    return sorted({name for m in chosen for name in m.model_fields})


def _tags(keys: Loc) -> list[str]:
    return [tag for m in _candidates(keys) if (tag := _driver(m)) is not None]


def _literal_choices(keys: Loc) -> list[str]:
    if not keys or isinstance(keys[-1], int):
        return []
    choices: list[str] = []
    for model in _candidates(keys[:-1]):
        field = model.model_fields.get(str(keys[-1]))
        if field is None:
            continue
        for member in _members(field.annotation):
            if typing.get_origin(member) is typing.Literal:
                choices.extend(str(a) for a in typing.get_args(member) if str(a) not in choices)
    return choices
