"""The development broker on loopback, so `edged run` works with no broker configured.

Mosquitto when it is installed (a child process speaking MQTT 5, honouring each message's
QoS); otherwise amqtt in this process, from the optional `demo` extra, which speaks MQTT 3.1.1
only. A convenience for laptops and demos, not a production broker: a production install
carries neither (it configures `broker.mode = "external"`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import time
from typing import Any

from edged.runtime.dev_broker import (
    Server,
    Wanted,
    choose_server,
    missing_server_reason,
    mosquitto_binary,
)

log = logging.getLogger("edged.link.broker")

START_TIMEOUT_S = 5.0


class EmbeddedBrokerError(OSError):
    pass


class EmbeddedBroker:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        wanted: Wanted = "auto",
    ) -> None:
        self.host = host
        self.port = port
        self.wanted = wanted
        self.server: Server | None = None
        self._amqtt: Any = None
        self._process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def mqtt5(self) -> bool:
        """Mosquitto speaks MQTT 5; amqtt only 3.1.1."""
        return self.server == "mosquitto"

    async def start(self) -> tuple[str, int]:
        """Listen and return (host, port); port 0 in config means a free one is picked."""
        server = choose_server(self.wanted)
        if server is None:
            raise EmbeddedBrokerError(
                f"embedded broker cannot start: {missing_server_reason(self.wanted)}"
            )
        if server == "mosquitto":
            await self._start_mosquitto()
        else:
            await self._start_amqtt()
        self.server = server
        log.info(
            "embedded broker listening",
            extra={"server": server, "host": self.host, "port": self.port},
        )
        return self.host, self.port

    async def stop(self) -> None:
        if self._amqtt is not None:
            broker, self._amqtt = self._amqtt, None
            await broker.shutdown()
        if self._process is not None:
            process, self._process = self._process, None
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 1.0)
                except TimeoutError:
                    process.kill()
                    await process.wait()
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None

    # -- Mosquitto ------------------------------------------------------------------------

    async def _start_mosquitto(self) -> None:
        """Mosquitto as a child that reads its config from stdin and dies with us: started
        through `setpriv --pdeathsig` (util-linux, on every Debian) so a SIGKILLed daemon
        leaves no broker behind, in its own session so a terminal's Ctrl-C reaches only
        the daemon, which then stops the broker after its last message."""
        binary = mosquitto_binary()
        assert binary is not None
        port = self.port or _free_port(self.host)
        conf = (
            "persistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n"
            "max_inflight_messages 0\nmax_queued_messages 0\n"
            f"listener {port} {self.host}\nallow_anonymous true\n"
        )
        setpriv = shutil.which("setpriv")
        command = [setpriv, "--pdeathsig", "TERM"] if setpriv else []
        self._process = process = await asyncio.create_subprocess_exec(
            *command, binary, "-c", "/dev/stdin",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        assert process.stdin is not None and process.stderr is not None
        process.stdin.write(conf.encode())
        process.stdin.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.returncode is None:
            if await _accepts(self.host, port):
                self.port = port
                self._drain = asyncio.create_task(_discard(process.stderr))
                return
            await asyncio.sleep(0.02)
        await self.stop()
        said = (await process.stderr.read()).decode(errors="replace").strip().splitlines()
        reason = said[-1] if said else "no answer on its port"
        raise EmbeddedBrokerError(f"embedded broker (mosquitto) cannot start: {reason}")

    # -- amqtt ----------------------------------------------------------------------------

    async def _start_amqtt(self) -> None:
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
            raise EmbeddedBrokerError(f"embedded broker (amqtt) cannot start: {exc}") from None
        self._amqtt = broker
        servers = broker._servers  # amqtt exposes no public way to read the bound port
        sockets: list[socket.socket] = list(servers["default"].instance.sockets)
        self.port = int(sockets[0].getsockname()[1])


async def _discard(stream: asyncio.StreamReader) -> None:
    """Mosquitto's warnings and errors go to our log; reading also keeps its pipe from filling."""
    while line := await stream.readline():
        log.warning("embedded broker says", extra={"line": line.decode(errors="replace").strip()})


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


async def _accepts(host: str, port: int) -> bool:
    with contextlib.suppress(OSError):
        _reader, writer = await asyncio.open_connection(host, port)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False
