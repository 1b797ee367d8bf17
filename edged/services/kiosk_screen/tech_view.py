"""What the technician page shows, gathered from the same places `edged status` and
`edged doctor` read: the daemon's status, the doctor's findings, the store's newest sales
and print jobs, and the newest log events (redacted on the way in)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from typing import Any

from edged.config.models import DaemonConfig
from edged.control.server import ControlServer
from edged.services.checkout.money import yuan
from edged.services.kiosk_screen.recent_logs import RecentLogs
from edged.store import Store
from hal.doctor import diagnose

DOCTOR_EVERY_S = 15.0
LAST_SALES = 10
LAST_JOBS = 10


class TechView:
    def __init__(
        self, config: DaemonConfig, control: ControlServer, store: Store, logs: RecentLogs
    ) -> None:
        self._config = config
        self._control = control
        self._store = store
        self._logs = logs
        self._doctor: list[dict[str, Any]] = []
        self._doctor_at = -DOCTOR_EVERY_S

    async def snapshot(self) -> dict[str, Any]:
        reply = await self._control.dispatch("status", {})
        status: dict[str, Any] = reply.get("result") or {"error": reply.get("error")}
        return {
            "type": "tech",
            "status": status,
            "doctor": await self._findings(),
            "sales": await self._last_sales(),
            "print_jobs": await self._print_jobs(),
            "config": self._config_summary(status),
            "logs": self._logs.newest(),
        }

    async def _findings(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        if now - self._doctor_at >= DOCTOR_EVERY_S:
            cfg = self._config
            # The doctor opens nodes and sockets; it runs off the loop.
            findings = await asyncio.to_thread(
                diagnose, cfg.scanner, cfg.camera, cfg.printer, cfg.display
            )
            self._doctor = [
                {**asdict(f), "kind": f.kind.value, "fixes": list(dict.fromkeys(f.fixes))}
                for f in findings
            ]
            self._doctor_at = now
        return self._doctor

    async def _last_sales(self) -> list[dict[str, Any]]:
        rows = await self._store.fetchall(
            "SELECT id, seq, state, total_fen, created_at, completed_at FROM sales "
            "ORDER BY seq DESC LIMIT ?",
            (LAST_SALES,),
        )
        return [
            {
                "id": r["id"],
                "no": r["seq"],
                "state": r["state"],
                "total": yuan(r["total_fen"]),
                "created_at": r["created_at"],
                "completed_at": r["completed_at"],
            }
            for r in rows
        ]

    async def _print_jobs(self) -> list[dict[str, Any]]:
        rows = await self._store.fetchall(
            "SELECT id, sale_id, kind, state, attempts, last_error, created_at, printed_at "
            "FROM print_jobs ORDER BY id DESC LIMIT ?",
            (LAST_JOBS,),
        )
        return [dict(r) for r in rows]

    def _config_summary(self, status: dict[str, Any]) -> dict[str, Any]:
        cfg = self._config
        return {
            "device": f"{cfg.device.site}/{cfg.device.id}",
            "name": cfg.device.name,
            "kind": cfg.device.kind,
            "version": status.get("version"),
            "remote": status.get("fleet_config", "local file only (no remote layers applied)"),
        }
