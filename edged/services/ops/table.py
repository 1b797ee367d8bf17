"""The one dispatch table of `cmd/op`, filled by whoever owns each command's effect.

The ops service registers `cmd/op` with the downlink router once; each command (its envelope
type, `op.reprint`) is a row here, added by the part that can carry it out, so the table and
the handlers can never disagree. An unknown command is refused with the nearest known names.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from edged.contract.bodies import MESSAGES, OpRequest
from edged.contract.topics import Downlink


class OpFailed(Exception):
    """The command ran and did not succeed; the message is the reason the operator reads."""


class OpRefused(Exception):
    """The command will not run (an interlock, a bad target); nothing was changed."""


class OpTimedOut(Exception):
    """The command waited for its turn (an idle kiosk) until its expiry passed."""


class OpProgress(Protocol):
    """What a running command can do besides returning its result."""

    expires_at: datetime | None

    async def in_progress(self, note: str = "") -> None:
        """Report `in_progress` (committed with its reply) before a long step."""
        ...


OpHandler = Callable[[Any, OpProgress], Awaitable[dict[str, Any]]]
"""Carries out one command; returns the result reported with `succeeded`."""


@dataclass(frozen=True)
class OpSpec:
    type_name: str
    model: type[OpRequest]
    handler: OpHandler
    interlocked: bool
    """Refused while a payment is open: it could disturb the shopper's money or goods."""


class UnknownOp(LookupError):
    pass


class OpTable:
    def __init__(self) -> None:
        self._specs: dict[str, OpSpec] = {}

    def register(self, type_name: str, handler: OpHandler, *, interlocked: bool = False) -> None:
        entry = MESSAGES.get(type_name)
        if entry is None or entry[0] is not Downlink.OP:
            raise ValueError(f"{type_name!r} is not an operations command of the contract")
        if type_name in self._specs:
            raise ValueError(f"a handler for {type_name} is already registered")
        model = entry[1]
        if not issubclass(model, OpRequest):
            raise ValueError(f"{type_name}: its body model does not carry a request_id")
        self._specs[type_name] = OpSpec(type_name, model, handler, interlocked)

    def lookup(self, type_name: str) -> OpSpec:
        spec = self._specs.get(type_name)
        if spec is not None:
            return spec
        near = difflib.get_close_matches(type_name, sorted(self._specs), n=2, cutoff=0.6)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        raise UnknownOp(f"unknown command {type_name!r}{hint}")

    def names(self) -> list[str]:
        return sorted(self._specs)
