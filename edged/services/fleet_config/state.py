"""The persisted state of remote config: the layers seen, and which ones the daemon runs.

Every change to it is one SQLite transaction that also queues the retained `cfg.state`
report, so what fleet operations read on `evt/cfg` is always what the device committed.

Phases: `committed` (the running config is made of `committed`); `staged` (a valid candidate
waits to be applied, for an idle kiosk); `applying` (the daemon runs the candidate inside its
health gate; `attempts` counts the starts made with it, so a candidate that kills the process
gets one more start at most and is then rolled back).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from edged.config.layers import Layers
from edged.contract.bodies import (
    ConfigProblem,
    ConfigScope,
    ConfigState,
    ConfigStatus,
    DesiredConfig,
    ScopeVersions,
    dump_body,
)
from edged.contract.topics import Uplink
from edged.store.database import Statements
from edged.store.outbox import Outbox

CFG_STATE = "cfg.state"


@dataclass(frozen=True)
class DesiredLayer:
    scope: ConfigScope
    version: int
    layer: dict[str, Any]
    grace_s: int | None
    valid: bool


@dataclass(frozen=True)
class ConfigRecord:
    committed: Layers
    candidate: Layers | None
    phase: str
    attempts: int
    grace_s: int | None
    applying_since: str | None
    devices_before: list[str]
    status: ConfigStatus
    scope: str | None = None
    version: int | None = None
    error: ConfigProblem | None = None
    note: str = ""
    layers: dict[str, DesiredLayer] = field(default_factory=dict)
    """The newest desired layer seen per scope."""

    def desired_versions(self) -> ScopeVersions:
        return ScopeVersions(**{scope: d.version for scope, d in self.layers.items()})

    def pending_layers(self) -> Layers:
        """Valid layers newer than what is committed for their scope: not applied yet."""
        return {
            scope: {"version": d.version, "layer": d.layer}
            for scope, d in self.layers.items()
            if d.valid and d.version > int(self.committed.get(scope, {}).get("version", 0))
        }

    def with_pending(self) -> Layers:
        """The committed layers with every pending one laid over them: the next candidate."""
        return {**self.committed, **self.pending_layers()}


def versions(layers: Layers) -> ScopeVersions:
    return ScopeVersions(**{scope: int(item["version"]) for scope, item in layers.items()})


class ConfigStore:
    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def load(self, s: Statements) -> ConfigRecord:
        row = s.fetchone("SELECT * FROM config_state WHERE id = 1")
        if row is None:
            raise RuntimeError("config_state has no row: migration 0011 did not run")
        layers = {
            r["scope"]: DesiredLayer(
                ConfigScope(r["scope"]),
                int(r["version"]),
                json.loads(r["layer"]),
                r["grace_s"],
                bool(r["valid"]),
            )
            for r in s.fetchall("SELECT * FROM config_layers")
        }
        error = None
        if row["error_key"] is not None:
            error = ConfigProblem(key=row["error_key"], message=row["error_message"] or "")
        return ConfigRecord(
            committed=json.loads(row["committed"]),
            candidate=json.loads(row["candidate"]) if row["candidate"] else None,
            phase=row["phase"],
            attempts=int(row["attempts"]),
            grace_s=row["grace_s"],
            applying_since=row["applying_since"],
            devices_before=json.loads(row["devices_before"]),
            status=ConfigStatus(row["status"]),
            scope=row["scope"],
            version=row["version"],
            error=error,
            note=row["note"],
            layers=layers,
        )

    def record_layer(
        self, s: Statements, scope: ConfigScope, body: DesiredConfig, msg_id: str, valid: bool
    ) -> None:
        s.execute(
            "INSERT INTO config_layers (scope, version, layer, grace_s, msg_id, valid, "
            "received_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (scope) DO UPDATE SET "
            "version = excluded.version, layer = excluded.layer, grace_s = excluded.grace_s, "
            "msg_id = excluded.msg_id, valid = excluded.valid, received_at = excluded.received_at",
            (
                scope.value,
                body.version,
                json.dumps(body.config, ensure_ascii=False),
                body.grace_s,
                msg_id,
                int(valid),
                s.now,
            ),
        )

    def invalidate(self, s: Statements, layers: Layers) -> None:
        """A candidate rolled back: its layers never enter a candidate again."""
        for scope, item in layers.items():
            s.execute(
                "UPDATE config_layers SET valid = 0 WHERE scope = ? AND version = ?",
                (scope, int(item["version"])),
            )

    def save(self, s: Statements, record: ConfigRecord, effective_hash: str) -> ConfigRecord:
        """Write the state row and queue its retained `cfg.state` report, in one transaction."""
        error = record.error
        s.execute(
            "UPDATE config_state SET committed = ?, candidate = ?, phase = ?, attempts = ?, "
            "grace_s = ?, applying_since = ?, devices_before = ?, status = ?, scope = ?, "
            "version = ?, error_key = ?, error_message = ?, note = ?, updated_at = ? "
            "WHERE id = 1",
            (
                json.dumps(record.committed, ensure_ascii=False),
                None
                if record.candidate is None
                else json.dumps(record.candidate, ensure_ascii=False),
                record.phase,
                record.attempts,
                record.grace_s,
                record.applying_since,
                json.dumps(record.devices_before),
                record.status.value,
                record.scope,
                record.version,
                None if error is None else error.key,
                None if error is None else error.message,
                record.note,
                s.now,
            ),
        )
        saved = replace(record, layers=self.load(s).layers)
        report = ConfigState(
            desired=saved.desired_versions(),
            applied=versions(saved.committed),
            status=saved.status,
            scope=ConfigScope(saved.scope) if saved.scope else None,
            version=saved.version,
            error=saved.error,
            effective_hash=effective_hash,
            note=saved.note,
        )
        self._outbox.write(s, Uplink.CFG, CFG_STATE, dump_body(report))
        return saved
