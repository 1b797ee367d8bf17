"""Device-role parts that may start late: `NotReady` from a setup is retried, not fatal.

A kiosk whose web port is still taken or whose printer is not plugged in yet must still sell.
`when_ready` runs the part's setup once; on `NotReady` it logs why and hands the setup to the
supervisor as a device task, which retries it with its backoff (and shows it in `tasks` with
its restarts and last error) until the setup returns. Anything else a setup raises propagates:
the start fails with one clear line and exit 1.

A setup that may raise `NotReady` must raise it before registering anything, and returns
nothing other parts depend on (they cannot wait for it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from edged.runtime.supervisor import Role, Supervisor
from edged.services.part import NotReady

log = logging.getLogger("edged.daemon")

SETUP_SUFFIX = ".setup"


async def when_ready(
    name: str, setup: Callable[[], Awaitable[object]], supervisor: Supervisor
) -> bool:
    """True if the part is set up now; False if its setup was handed to the supervisor."""
    try:
        await setup()
    except NotReady as exc:
        log.warning("part not ready; retrying", extra={"part": name, "reason": str(exc)})

        async def retry() -> None:
            await setup()

        supervisor.start(name + SETUP_SUFFIX, retry, Role.DEVICE, once=True)
        return False
    return True
