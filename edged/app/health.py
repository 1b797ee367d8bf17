"""What remote config asks of the running daemon: its health for the gate, its live parts."""

from __future__ import annotations

from dataclasses import dataclass

from edged.config import DaemonConfig
from edged.link.service import Link
from edged.runtime.supervisor import Supervisor
from edged.services.part import Reconfigure
from hal.factory import Devices


@dataclass(frozen=True)
class DaemonHealth:
    link: Link
    supervisor: Supervisor
    devices: Devices

    def connected(self) -> bool:
        """The link sets `connected` once the birth is published on a new connection."""
        return self.link.connected.is_set()

    def core_running(self) -> bool:
        return self.supervisor.healthy()

    def working_devices(self) -> set[str]:
        return {str(s.kind) for s in self.devices.statuses() if s.present and s.ok}


@dataclass(frozen=True)
class LiveSections:
    """The config sections whose parts take new values while running."""

    handlers: dict[str, list[Reconfigure]]

    def sections(self) -> set[str]:
        return set(self.handlers)

    def apply(self, config: DaemonConfig) -> None:
        applied: set[int] = set()
        for handlers in self.handlers.values():
            for handler in handlers:
                if id(handler) not in applied:  # one part may take several sections
                    applied.add(id(handler))
                    handler(config)
