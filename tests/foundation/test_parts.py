"""The part seam: tasks wait until every part is set up; a part not ready is retried."""

from __future__ import annotations

import asyncio

import pytest

from edged.app.readiness import when_ready
from edged.runtime.supervisor import Role, Supervisor
from edged.services.part import NotReady, PartSupervisor


async def test_tasks_started_during_setup_run_only_once_every_part_is_set_up() -> None:
    supervisor = Supervisor()
    parts = PartSupervisor(supervisor)
    ran: list[str] = []
    running = asyncio.Semaphore(0)

    async def print_queue() -> None:
        ran.append("print-queue")
        running.release()
        await asyncio.Event().wait()

    parts.start("print-queue", print_queue, Role.DEVICE)
    await asyncio.sleep(0.05)  # what would have run by now did not
    assert ran == []
    assert supervisor.health() == []

    parts.release()
    await asyncio.wait_for(running.acquire(), 2)
    assert ran == ["print-queue"]
    assert [(h.name, h.running) for h in parts.health()] == [("print-queue", True)]

    parts.start("late", print_queue, Role.DEVICE)  # a part set up after the release
    await asyncio.wait_for(running.acquire(), 2)
    assert ran == ["print-queue", "print-queue"]
    await supervisor.stop()


async def test_a_part_not_ready_is_set_up_later_with_backoff_and_reported() -> None:
    supervisor = Supervisor(min_backoff_s=0.01, max_backoff_s=0.02)
    attempts = 0
    set_up = asyncio.Event()

    async def kiosk_screen() -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise NotReady("port 8080 is in use")
        set_up.set()

    assert await when_ready("kiosk-screen", kiosk_screen, supervisor) is False
    await asyncio.wait_for(set_up.wait(), 2)
    await asyncio.sleep(0.05)  # a set-up part is not set up again

    assert attempts == 3
    [health] = supervisor.health()
    assert (health.name, health.role, health.running) == ("kiosk-screen.setup", Role.DEVICE, False)
    assert health.restarts == 1  # the first retry failed too, then it was set up
    assert health.last_error == ""
    await supervisor.stop()


async def test_a_part_ready_at_once_is_set_up_inline() -> None:
    supervisor = Supervisor()
    calls = 0

    async def printer() -> None:
        nonlocal calls
        calls += 1

    assert await when_ready("printer", printer, supervisor) is True
    assert calls == 1
    assert supervisor.health() == []


async def test_any_other_setup_error_fails_the_start() -> None:
    supervisor = Supervisor()

    async def broken() -> None:
        raise ValueError("config says port -1")

    with pytest.raises(ValueError, match="port -1"):
        await when_ready("kiosk-screen", broken, supervisor)
    assert supervisor.health() == []
