"""Remote config: signed layers in, staged, applied while idle, health-gated, then committed.

The handler runs in the inbox transaction of a `cfg.desired` message. It records the layer
(a stale or equal version is ignored, and the report says so), validates the candidate it
makes with the file and the other scopes' layers, and either rejects it with the dotted key
at fault or stages it. The applier waits for an idle kiosk (no sale paying, no payment open:
the report says `deferred`), moves to `applying` and asks the daemon to restart its parts in
process with the candidate. The next start's gate then commits it once the daemon is
connected with its birth published, its core tasks running and every device that worked
before still working, or rolls back to the committed layers when `grace_s` passes first.
The committed layers (a working broker's settings among them) stay in the store until the
candidate has passed, so a broker change that cannot connect ends with the device back on
the broker it had.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Protocol

from edged.config import ConfigError, DaemonConfig
from edged.config.layers import Layers, build_config, effective_hash, origins
from edged.contract.bodies import (
    BodyError,
    ConfigProblem,
    ConfigScope,
    ConfigStatus,
    DesiredConfig,
    envelope_body,
)
from edged.contract.envelope import Envelope, parse_rfc3339, rfc3339
from edged.link.downlink import DownlinkDelivery, HandlerRejected
from edged.runtime.clock import Clock
from edged.services.fleet_config.state import ConfigRecord, ConfigStore
from edged.store.database import Statements, Store, Transaction

log = logging.getLogger("edged.fleet_config")

DEFAULT_GRACE_S = 120
GATE_POLL_S = 0.25
IDLE_POLL_S = 0.5


class LiveParts(Protocol):
    """The config sections some running part takes new values of, and how to hand them over."""

    def sections(self) -> set[str]: ...

    def apply(self, config: DaemonConfig) -> None: ...


class GateProbe(Protocol):
    """What the health gate asks of the running daemon."""

    def connected(self) -> bool:
        """Connected to the broker with the birth published."""
        ...

    def core_running(self) -> bool: ...

    def working_devices(self) -> set[str]:
        """The device kinds present and working now."""
        ...


@dataclass(frozen=True)
class Running:
    """The config this daemon instance was built with, and what it is made of."""

    file_raw: Mapping[str, Any]
    config: DaemonConfig
    layers: Layers
    gate: bool


def _problem(exc: ConfigError) -> ConfigProblem:
    """`fleet v3: checkout.x: reason` -> key `checkout.x`, the whole line as the message."""
    first = exc.problems[0]
    parts = first.split(": ", 2)
    key = parts[1] if len(parts) == 3 else "<layer>"
    return ConfigProblem(key=key[:200], message="; ".join(exc.problems)[:500])


class FleetConfig:
    def __init__(
        self,
        store: Store,
        config_store: ConfigStore,
        clock: Clock,
        running: Running,
        *,
        busy: Callable[[], bool],
        probe: GateProbe,
        request_reload: Callable[[], None],
        live: LiveParts,
    ) -> None:
        self._store = store
        self._state = config_store
        self._clock = clock
        self.running = running
        self._busy = busy
        self._probe = probe
        self._request_reload = request_reload
        self._live = live
        self._wake = asyncio.Event()

    # -- the downlink -----------------------------------------------------------------------

    async def handle_downlink(
        self, envelope: Envelope, tx: Transaction, delivery: DownlinkDelivery
    ) -> None:
        try:
            body = envelope_body(envelope, "cfg.desired", DesiredConfig)
        except BodyError as exc:
            raise HandlerRejected(str(exc)) from None
        scope = ConfigScope(delivery.scope)
        await tx.run(lambda s: self._receive(s, scope, body, envelope.id))

    def _receive(self, s: Statements, scope: ConfigScope, body: DesiredConfig, msg_id: str) -> None:
        record = self._state.load(s)
        seen = record.layers.get(scope)
        if seen is not None and body.version <= seen.version:
            note = f"{scope.value} v{body.version} ignored: not newer than v{seen.version}"
            log.info("remote config ignored", extra={"reason": note})
            self._save(s, replace(record, note=note))
            return
        candidate_layers = {
            **record.with_pending(),
            scope.value: {"version": body.version, "layer": body.config},
        }
        try:
            build_config(self.running.file_raw, candidate_layers)
        except ConfigError as exc:
            self._state.record_layer(s, scope, body, msg_id, valid=False)
            problem = _problem(exc)
            log.warning("remote config rejected", extra={"reason": problem.message})
            self._save(
                s,
                replace(
                    record,
                    status=ConfigStatus.REJECTED,
                    scope=scope.value,
                    version=body.version,
                    error=problem,
                    note="",
                ),
            )
            return
        self._state.record_layer(s, scope, body, msg_id, valid=True)
        if record.phase == "applying":
            # A newer layer during a gate: it is staged after the gate has decided.
            self._save(s, replace(record, note=f"{scope.value} v{body.version} waits for the gate"))
            return
        self._save(
            s,
            replace(
                record,
                candidate=candidate_layers,
                phase="staged",
                status=ConfigStatus.DEFERRED if self._busy() else ConfigStatus.APPLYING,
                grace_s=body.grace_s,
                scope=scope.value,
                version=body.version,
                error=None,
                note="",
            ),
        )
        s.after.append(self._wake.set)

    def _save(self, s: Statements, record: ConfigRecord) -> ConfigRecord:
        return self._state.save(s, record, effective_hash(self.running.config))

    async def _update(self, change: Callable[[ConfigRecord], ConfigRecord | None]) -> ConfigRecord:
        def work(s: Statements) -> ConfigRecord:
            record = self._state.load(s)
            changed = change(record)
            return record if changed is None else self._save(s, changed)

        async with self._store.transaction() as tx:
            return await tx.run(work)

    # -- the applier and the gate (one supervised task) ---------------------------------------

    async def run(self) -> None:
        if self.running.gate:
            await self._gate()
        while True:
            record = await self._update(_stage_waiting)
            if record.phase == "staged" and record.candidate is not None:
                await self._apply(record)
                continue
            self._wake.clear()
            await self._wake.wait()

    async def _apply(self, record: ConfigRecord) -> None:
        assert record.candidate is not None
        if self._busy():
            if record.status is not ConfigStatus.DEFERRED:
                await self._update(lambda r: replace(r, status=ConfigStatus.DEFERRED))
                log.info("remote config deferred: the kiosk is busy")
            while self._busy():  # noqa: ASYNC110 - checkout and payments signal no event
                await asyncio.sleep(IDLE_POLL_S)
        candidate = record.candidate
        try:
            config = build_config(self.running.file_raw, candidate)
        except ConfigError as exc:  # the file changed under a staged candidate
            await self._reject_candidate(candidate, _problem(exc))
            return
        changed = _changed_sections(config, self.running.config)
        if changed <= self._live.sections():
            # Nothing changes, or only what running parts take live: no rebuild, no reconnect.
            self._live.apply(config)
            await self._update(lambda r: _committed(r, candidate))
            self.running = replace(self.running, config=config, layers=candidate)
            log.info("remote config applied live", extra={"sections": sorted(changed)})
            return
        working = sorted(self._probe.working_devices())
        await self._update(
            lambda r: replace(
                r,
                phase="applying",
                attempts=0,
                applying_since=rfc3339(self._clock.now()),
                devices_before=working,
                status=ConfigStatus.APPLYING,
            )
        )
        log.info("remote config applying: restarting the daemon's parts")
        self._request_reload()
        await asyncio.Event().wait()  # the daemon stops around us

    async def _reject_candidate(
        self,
        candidate: Layers,
        problem: ConfigProblem,
        status: ConfigStatus = ConfigStatus.REJECTED,
    ) -> None:
        """Back to the committed layers; the candidate's new layers never come back."""

        def change(r: ConfigRecord) -> ConfigRecord:
            return replace(
                r,
                phase="committed",
                candidate=None,
                attempts=0,
                applying_since=None,
                status=status,
                error=problem,
            )

        def work(s: Statements) -> None:
            record = self._state.load(s)
            self._state.invalidate(s, _changed(candidate, record.committed))
            self._save(s, change(record))

        async with self._store.transaction() as tx:
            await tx.run(work)
        log.warning("remote config not kept", extra={"reason": problem.message})

    async def _gate(self) -> None:
        record = await self._update(lambda r: None)
        grace = record.grace_s or DEFAULT_GRACE_S
        since = parse_rfc3339(record.applying_since) if record.applying_since else self._clock.now()
        deadline = since + timedelta(seconds=grace)
        before = set(record.devices_before)
        why = ""
        while self._clock.now() < deadline:
            why = self._gate_problem(before)
            if not why:
                await self._update(lambda r: _committed(r, r.candidate or r.committed))
                self.running = replace(self.running, gate=False)
                log.info("remote config committed")
                return
            await asyncio.sleep(GATE_POLL_S)
        problem = ConfigProblem(
            key="<health>", message=f"health gate failed after {grace} s: {why}"
        )
        await self._reject_candidate(self.running.layers, problem, ConfigStatus.ROLLED_BACK)
        log.error("remote config rolled back", extra={"reason": problem.message})
        self._request_reload()
        await asyncio.Event().wait()

    def _gate_problem(self, before: set[str]) -> str:
        if not self._probe.connected():
            return "not connected to the broker"
        if not self._probe.core_running():
            return "a core task is not running"
        lost = sorted(before - self._probe.working_devices())
        return f"device lost: {', '.join(lost)}" if lost else ""

    async def show(self, _args: dict[str, Any]) -> dict[str, Any]:
        """`edged config show`: every effective key, its value (secrets masked), its origin."""
        found = origins(self.running.file_raw, self.running.layers)
        flat: dict[str, Any] = {}
        _flatten(self.running.config.model_dump(mode="json"), "", flat)
        return {
            key: {"value": value, "origin": found.get(key, "default")}
            for key, value in sorted(flat.items())
        }

    async def status(self) -> dict[str, Any]:
        record = await self._update(lambda r: None)
        return {
            "status": record.status.value,
            "phase": record.phase,
            "applied": {k: v["version"] for k, v in record.committed.items()},
            "desired": record.desired_versions().model_dump(exclude_none=True),
            "error": None if record.error is None else record.error.model_dump(),
            "note": record.note,
            "effective_hash": effective_hash(self.running.config),
        }


def _stage_waiting(record: ConfigRecord) -> ConfigRecord | None:
    """Layers that arrived while a gate ran (or before a restart) are staged once it decided."""
    pending = record.pending_layers()
    if record.phase != "committed" or not pending:
        return None
    newest = max(pending, key=lambda scope: record.layers[scope].version)
    return replace(
        record,
        candidate=record.with_pending(),
        phase="staged",
        status=ConfigStatus.APPLYING,
        grace_s=record.layers[newest].grace_s,
        scope=newest,
        version=record.layers[newest].version,
        error=None,
        note="",
    )


def _flatten(node: Mapping[str, Any], prefix: str, into: dict[str, Any]) -> None:
    for key, value in node.items():
        if isinstance(value, Mapping) and value:
            _flatten(value, f"{prefix}{key}.", into)
        else:
            into[f"{prefix}{key}"] = value


def _changed_sections(new: DaemonConfig, old: DaemonConfig) -> set[str]:
    return {name for name in type(new).model_fields if getattr(new, name) != getattr(old, name)}


def _committed(record: ConfigRecord, layers: Layers) -> ConfigRecord:
    return replace(
        record,
        committed=layers,
        candidate=None,
        phase="committed",
        attempts=0,
        applying_since=None,
        status=ConfigStatus.APPLIED,
        error=None,
    )


def _changed(candidate: Layers, committed: Layers) -> Layers:
    return {
        scope: item
        for scope, item in candidate.items()
        if committed.get(scope, {}).get("version") != item.get("version")
    }
