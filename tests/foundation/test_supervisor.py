"""Supervision: a failing device is restarted and reported; a failing core task stops all."""

from __future__ import annotations

import asyncio

import pytest

from edged.runtime.supervisor import CoreTaskFailed, Role, Supervisor, TaskHealth
from tests.support.polling import until


async def test_a_failing_device_task_is_restarted_with_backoff_and_reported() -> None:
    supervisor = Supervisor(min_backoff_s=0.01, max_backoff_s=0.05)
    attempts = 0
    recovered = asyncio.Event()

    async def flaky_scanner() -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 4:
            raise OSError(19, "No such device")
        recovered.set()
        await asyncio.Event().wait()

    supervisor.start("scanner", flaky_scanner, Role.DEVICE)
    await asyncio.wait_for(recovered.wait(), 2)

    [health] = supervisor.health()
    assert health.running
    assert health.restarts == 3
    assert "No such device" in health.last_error
    assert supervisor.healthy()
    await supervisor.stop()


async def test_a_failing_core_task_ends_the_wait_with_its_reason() -> None:
    supervisor = Supervisor()

    async def store() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("disk I/O error")

    supervisor.start("store", store, Role.CORE)

    with pytest.raises(CoreTaskFailed, match="core task store failed: RuntimeError: disk I/O"):
        await asyncio.wait_for(supervisor.wait(), 2)
    assert not supervisor.healthy()
    await supervisor.stop()


async def test_a_device_failure_leaves_core_tasks_and_health_intact() -> None:
    supervisor = Supervisor(min_backoff_s=0.01, max_backoff_s=0.01)

    async def broken_printer() -> None:
        raise OSError("paper jam")

    supervisor.start("core", asyncio.Event().wait, Role.CORE)
    supervisor.start("printer", broken_printer, Role.DEVICE)

    def health(name: str) -> TaskHealth:
        return next(h for h in supervisor.health() if h.name == name)

    await until(lambda: health("printer").restarts >= 3, what="printer restarted three times")
    assert supervisor.healthy()
    assert health("core").running and health("core").restarts == 0
    assert not health("printer").running and "paper jam" in health("printer").last_error
    await supervisor.stop()
