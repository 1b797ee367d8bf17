"""The development broker: amqtt on loopback, so `edged run` works with nothing installed.

It is a convenience for laptops and demos, not a production broker: it speaks MQTT 3.1.1
only and keeps its sessions in memory.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

log = logging.getLogger("edged.link.broker")


class EmbeddedBrokerError(RuntimeError):
    pass


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._broker: Any = None

    async def start(self) -> tuple[str, int]:
        """Listen and return (host, port); port 0 in config means the kernel picks one."""
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        broker = Broker(config)
        try:
            await broker.start()
        except Exception as exc:
            raise EmbeddedBrokerError(f"embedded broker cannot start: {exc}") from None
        self._broker = broker
        servers = broker._servers  # amqtt exposes no public way to read the bound port
        sockets: list[socket.socket] = list(servers["default"].instance.sockets)
        self.port = int(sockets[0].getsockname()[1])
        log.info("embedded broker listening", extra={"host": self.host, "port": self.port})
        return self.host, self.port

    async def stop(self) -> None:
        if self._broker is not None:
            broker, self._broker = self._broker, None
            await broker.shutdown()
