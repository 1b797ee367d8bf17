"""Task supervision: device tasks restart with backoff; a core task failing stops the daemon.

A scanner unplugged mid-sale must not take the kiosk down, but a dead store or link must,
so systemd restarts the whole daemon with a clear message in the journal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from edged.runtime.backoff import Backoff

log = logging.getLogger("edged.supervisor")

TaskFactory = Callable[[], Awaitable[None]]
HEALTHY_RUN_S = 30.0
"""A restarted task that then runs this long has its backoff reset."""


class Role(StrEnum):
    CORE = "core"
    DEVICE = "device"


@dataclass
class TaskHealth:
    name: str
    role: Role
    running: bool = False
    restarts: int = 0
    last_error: str = ""


@dataclass
class _Supervised:
    health: TaskHealth
    factory: TaskFactory
    backoff: Backoff
    once: bool = False
    task: asyncio.Task[None] | None = field(default=None)


class CoreTaskFailed(RuntimeError):
    """Raised from Supervisor.wait() when a core task died."""


class Supervisor:
    def __init__(self, min_backoff_s: float = 0.5, max_backoff_s: float = 30.0) -> None:
        self._tasks: dict[str, _Supervised] = {}
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s
        self._fatal: asyncio.Future[str] | None = None

    def start(self, name: str, factory: TaskFactory, role: Role, *, once: bool = False) -> None:
        """Keep `factory` running; with `once`, only until it returns (retried while it fails)."""
        if name in self._tasks:
            raise ValueError(f"task {name!r} is already supervised")
        if self._fatal is None:
            self._fatal = asyncio.get_running_loop().create_future()
        entry = _Supervised(
            TaskHealth(name, role),
            factory,
            Backoff(self._min_backoff_s, self._max_backoff_s),
            once,
        )
        self._tasks[name] = entry
        entry.task = asyncio.create_task(self._keep(entry), name=f"supervised:{name}")

    def health(self) -> list[TaskHealth]:
        return [entry.health for entry in self._tasks.values()]

    def healthy(self) -> bool:
        """Every core task is running: what the systemd watchdog vouches for."""
        return all(e.health.running for e in self._tasks.values() if e.health.role is Role.CORE)

    async def wait(self) -> None:
        """Return never; raise CoreTaskFailed when a core task dies."""
        if self._fatal is None:
            self._fatal = asyncio.get_running_loop().create_future()
        raise CoreTaskFailed(await self._fatal)

    async def stop(self) -> None:
        tasks = [e.task for e in self._tasks.values() if e.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep(self, entry: _Supervised) -> None:
        loop = asyncio.get_running_loop()
        health = entry.health
        while True:
            started = loop.time()
            health.running = True
            try:
                await entry.factory()
                if entry.once:
                    health.running = False
                    health.last_error = ""
                    return
                reason = "exited unexpectedly"
            except asyncio.CancelledError:
                health.running = False
                raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
            health.running = False
            health.last_error = reason
            if health.role is Role.CORE:
                log.error("core task failed", extra={"task": health.name, "reason": reason})
                if self._fatal is not None and not self._fatal.done():
                    self._fatal.set_result(f"core task {health.name} failed: {reason}")
                return
            if loop.time() - started > HEALTHY_RUN_S:
                entry.backoff.reset()
            delay = entry.backoff.next_delay()
            health.restarts += 1
            log.warning(
                "device task failed; restarting",
                extra={"task": health.name, "reason": reason, "retry_in_s": round(delay, 2)},
            )
            await asyncio.sleep(delay)
