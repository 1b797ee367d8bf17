"""Each start is a recorded fact: fleet operations see restarts and unclean shutdowns.

The boot row and its `device.boot` message commit together before READY; a clean stop
stamps `stopped_at`, so a row left without one means the previous run was killed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from edged.contract.bodies import DeviceBoot, dump_body
from edged.contract.topics import Uplink
from edged.store import Store
from edged.store.outbox import Outbox

BOOT_SEQUENCE = "boot"
BOOT_TYPE = "device.boot"


class BootRecord:
    def __init__(self, store: Store, outbox: Outbox, boot_id: str, version: str) -> None:
        self._store = store
        self._outbox = outbox
        self.boot_id = boot_id
        self._version = version
        self.previous_shutdown: Literal["none", "clean", "unclean"] = "none"

    async def record_start(self) -> DeviceBoot:
        async with self._store.transaction() as tx:
            previous = await tx.fetchone(
                "SELECT boot_id, stopped_at FROM boots ORDER BY seq DESC LIMIT 1"
            )
            if previous is not None:
                self.previous_shutdown = "clean" if previous["stopped_at"] else "unclean"
            synced = self._store.clock.synced()
            seq = await tx.next_sequence(BOOT_SEQUENCE)
            await tx.insert(
                "INSERT INTO boots (boot_id, seq, version, started_at, clock_synced) "
                "VALUES (?, ?, ?, ?, ?)",
                (self.boot_id, seq, self._version, tx.now, synced),
            )
            body = DeviceBoot(
                boot_id=self.boot_id,
                version=self._version,
                previous_boot_id=previous["boot_id"] if previous else None,
                previous_shutdown=self.previous_shutdown,
            )
            await self._outbox.add(tx, Uplink.HEALTH, BOOT_TYPE, dump_body(body))
        return body

    async def record_stop(self) -> None:
        async with self._store.transaction() as tx:
            await tx.execute(
                "UPDATE boots SET stopped_at = ? WHERE boot_id = ?", (tx.now, self.boot_id)
            )


async def record_boot(
    store: Store,
    outbox: Outbox,
    boot_id: str,
    version: str,
    on_close: Callable[[Callable[[], Awaitable[None]]], None],
) -> BootRecord:
    """Commit this start (with its `device.boot` message); a clean stop stamps it."""
    boot = BootRecord(store, outbox, boot_id, version)
    await boot.record_start()
    on_close(boot.record_stop)
    return boot
