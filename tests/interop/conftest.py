"""The interop matrix: the same end-to-end tests against each broker edged is sold with.

- `mosquitto-mqtt5`: Mosquitto 2, daemon and cloud on MQTT 5.
- `mosquitto-mqtt311`: the same Mosquitto with 3.1.1 forced on both clients (the daemon's
  `broker.protocol = "mqtt311"`; replies then go to `rsp/...` only).
- `rabbitmq-cluster`: RabbitMQ 3.10's MQTT plugin as a three-node cluster on loopback, the
  daemon configured with all three nodes as endpoints and connected to node a (it asks for
  MQTT 5 and falls back to 3.1.1 by itself), the simulated cloud on node b.

The cluster is formed once per session (tens of seconds) and a node a test stopped is
started again before the next test uses the cluster. A missing rabbitmq-server fails the
tests, never skips them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.mosquitto import Mosquitto
from tests.support.rabbitmq import RabbitCluster

FLAVOURS = ["mosquitto-mqtt5", "mosquitto-mqtt311", "rabbitmq-cluster"]


@dataclass
class BrokerUnderTest:
    flavour: str
    endpoints: list[tuple[str, int]]
    """What the daemon is configured with, in order (its first is where it connects)."""
    cloud: tuple[str, int]
    """Where the simulated cloud and the test's observers connect."""
    protocol: str
    cloud_mqtt5: bool
    cluster: RabbitCluster | None = None
    mosquitto: Mosquitto | None = None
    stopped: list[int] = field(default_factory=list)

    @property
    def clustered(self) -> bool:
        return self.cluster is not None

    def stop_daemon_node(self) -> None:
        """Stop the node the daemon is on (a whole RabbitMQ node, or the one Mosquitto)."""
        if self.cluster is not None:
            self.cluster.nodes[0].stop()
        elif self.mosquitto is not None:
            self.mosquitto.stop()

    def start_daemon_node(self) -> None:
        if self.cluster is not None:
            self.cluster.nodes[0].restart()
        elif self.mosquitto is not None:
            self.mosquitto.start()


class ClusterSession:
    """Forms the cluster on first use; reports how long that took at the end of the run."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.cluster: RabbitCluster | None = None

    def get(self) -> RabbitCluster:
        if self.cluster is None:
            self.cluster = RabbitCluster(self.workdir).start()
        for node in self.cluster.nodes:
            if node.process is None or node.process.poll() is not None:
                node.restart()  # a test stopped it; the next test gets all three back
        return self.cluster

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()


@pytest.fixture(scope="session")
def rabbit_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterSession]:
    session = ClusterSession(tmp_path_factory.mktemp("rabbitmq"))
    yield session
    session.close()


@pytest.fixture(params=FLAVOURS)
def broker(
    request: pytest.FixtureRequest, tmp_path: Path, rabbit_session: ClusterSession
) -> Iterator[BrokerUnderTest]:
    flavour: str = request.param
    if flavour == "rabbitmq-cluster":
        began = time.monotonic()
        cluster = rabbit_session.get()
        request.config.stash.setdefault(CLUSTER_SECONDS, []).append(time.monotonic() - began)
        a, b, c = cluster.nodes
        yield BrokerUnderTest(
            flavour,
            endpoints=[(n.host, n.port) for n in (a, b, c)],
            cloud=(b.host, b.port),
            protocol="mqtt5",
            cloud_mqtt5=False,
            cluster=cluster,
        )
        return
    mosquitto = Mosquitto(tmp_path / "mosquitto")
    mosquitto.start()
    mqtt5 = flavour == "mosquitto-mqtt5"
    try:
        yield BrokerUnderTest(
            flavour,
            endpoints=[(mosquitto.host, mosquitto.port)],
            cloud=(mosquitto.host, mosquitto.port),
            protocol="mqtt5" if mqtt5 else "mqtt311",
            cloud_mqtt5=mqtt5,
            mosquitto=mosquitto,
        )
    finally:
        mosquitto.stop()


CLUSTER_SECONDS = pytest.StashKey[list[float]]()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    spent = config.stash.get(CLUSTER_SECONDS, [])
    if spent:
        terminalreporter.write_line(
            f"RabbitMQ cluster: formed in {spent[0]:.1f} s, node restarts between tests "
            f"{sum(spent[1:]):.1f} s"
        )
