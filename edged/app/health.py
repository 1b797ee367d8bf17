"""What the remote-config health gate asks of the running daemon, answered from its parts."""

from __future__ import annotations

from dataclasses import dataclass

from edged.link.service import Link
from edged.runtime.supervisor import Supervisor
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
