"""A real three-node RabbitMQ cluster with the MQTT plugin, formed on loopback by the tests.

Debian's `rabbitmq-server` (3.10, MQTT 3.1.1 only) is started three times from its own
scripts, each node with its own name, ports, data and log folders (RABBITMQ_* variables),
one private Erlang cookie (`$HOME/.erlang.cookie`) and a private epmd port, so it neither
touches a system RabbitMQ nor another test run. Nodes b and c join a with
`rabbitmqctl join_cluster`. Starting and joining takes tens of seconds, so the cluster is
made once per test session (see `tests/conftest.py`) and reused.

The plugin's quirks and what this cluster sets for them (rabbitmq.conf):
- MQTT 5 is refused (3.10): the link falls back to 3.1.1 by itself.
- A persistent session (clean_session=false) is a durable queue; a classic queue lives on
  one node and is unreachable while that node is down, so `mqtt.durable_queue_type = quorum`
  replicates it (needs a majority: three nodes). Stopping the node a device was on keeps
  its subscription queue on the other two.
- Retained messages are stored per node and not replicated, and never sent for a wildcard
  filter: a retained `state` published on one node is not seen by a subscriber on another.
- QoS 2 subscriptions are downgraded to QoS 1 (edged uses QoS 1 only).
- The plugin keeps client ids in a Raft cluster: with a majority of nodes down no client can
  connect at all.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port, wait_for_port

SBIN = Path("/usr/lib/rabbitmq/bin")
COOKIE = "edgedtestclustercookie"
NODE_NAMES = ("edged-a", "edged-b", "edged-c")


class RabbitMissing(RuntimeError):
    pass


def rabbit_binary(name: str) -> str:
    path = SBIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found:
        return found
    raise RabbitMissing(
        f"{name} is not installed: scripts/system-packages.sh installs rabbitmq-server"
    )


@dataclass
class RabbitNode:
    name: str
    workdir: Path
    home: Path
    epmd_port: int
    mqtt_port: int = field(default_factory=free_port)
    amqp_port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self.mqtt_port

    @property
    def node(self) -> str:
        return f"{self.name}@localhost"

    def env(self) -> dict[str, str]:
        base = self.workdir
        return {
            **os.environ,
            "HOME": str(self.home),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(base / "rabbit.pid"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "+S 1:1 +A 4",
            "LC_ALL": "C.UTF-8",
        }

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}\n"
            f"mqtt.listeners.tcp.1 = 127.0.0.1:{self.mqtt_port}\n"
            "mqtt.allow_anonymous = true\n"
            "mqtt.vhost = /\n"
            "mqtt.exchange = amq.topic\n"
            "mqtt.durable_queue_type = quorum\n"
            "mqtt.subscription_ttl = 86400000\n"
            "mqtt.prefetch = 64\n"
            "loopback_users = none\n"
            "log.console = false\n"
            "log.file.level = warning\n"
            "cluster_partition_handling = pause_minority\n",
            encoding="utf-8",
        )
        (self.workdir / "enabled_plugins").write_text("[rabbitmq_mqtt].\n", encoding="utf-8")
        (self.workdir / "advanced.config").write_text("[].\n", encoding="utf-8")
        (self.workdir / "rabbitmq-env.conf").write_text("", encoding="utf-8")

    def start(self) -> None:
        self.write_config()
        log = (self.workdir / "server.log").open("ab")
        self.process = subprocess.Popen(
            [rabbit_binary("rabbitmq-server")],
            env=self.env(),
            cwd=self.workdir,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )

    def ctl(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            [rabbit_binary("rabbitmqctl"), "-n", self.node, *args],
            env=self.env(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl {' '.join(args)} on {self.node} failed ({result.returncode}): "
                f"{result.stdout.decode(errors='replace')}{result.stderr.decode(errors='replace')}"
                f"\n{self.log_tail()}"
            )
        return result.stdout.decode(errors="replace")

    def wait_booted(self, timeout: float = 120) -> None:
        """Until the node answers and its applications (the MQTT listener too) are up."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.node} exited at start:\n{self.log_tail()}")
            try:
                self.ctl("await_startup", "--timeout", "60", timeout=70)
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def wait_mqtt(self, timeout: float = 60) -> None:
        wait_for_port(self.mqtt_port, timeout)

    def stop(self) -> None:
        """Stop the whole node (the Erlang VM), as a crash of that machine would."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def restart(self, timeout: float = 120) -> None:
        self.stop()
        self.start()
        self.wait_booted(timeout)
        self.wait_mqtt()

    def log_tail(self, lines: int = 30) -> str:
        out: list[str] = []
        for path in [*sorted((self.workdir / "log").glob("*.log")), self.workdir / "server.log"]:
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)


@dataclass
class RabbitCluster:
    workdir: Path
    nodes: list[RabbitNode] = field(default_factory=list)
    started_s: float = 0.0
    """How long forming the cluster took (reported in the suite's summary)."""

    def start(self) -> RabbitCluster:
        began = time.monotonic()
        home = self.workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(COOKIE, encoding="ascii")
        cookie.chmod(0o400)
        epmd = free_port()
        self.nodes = [RabbitNode(n, self.workdir / n, home, epmd) for n in NODE_NAMES]
        try:
            for node in self.nodes:
                node.start()
            for node in self.nodes:
                node.wait_booted()
            seed = self.nodes[0]
            for node in self.nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", seed.node)
                node.ctl("start_app")
            for node in self.nodes:
                node.wait_booted()
                node.wait_mqtt()
            self.check_members()
        except BaseException:
            self.stop()
            raise
        self.started_s = time.monotonic() - began
        return self

    def check_members(self) -> None:
        status = self.nodes[0].ctl("cluster_status", "--formatter", "json")
        for node in self.nodes:
            if node.node not in status:
                raise RuntimeError(f"{node.node} is not in the cluster: {status}")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        epmd = shutil.which("epmd")
        if epmd and self.nodes:
            subprocess.run(
                [epmd, "-kill"],
                env={**os.environ, "ERL_EPMD_PORT": str(self.nodes[0].epmd_port)},
                capture_output=True,
                check=False,
                timeout=10,
            )
