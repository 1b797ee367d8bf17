"""The retained `state` message: a birth after every connect, the will saying offline.

Both are built before CONNECT from one persisted `state` sequence (birth n, will n+1), so
whoever reads the retained topic can order a birth and the will of the same connection
even when the device clock is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from edged.contract.bodies import DeviceState, dump_body
from edged.contract.envelope import Envelope, make_envelope
from edged.contract.topics import UPLINK_RULES, DeviceTopics, Uplink
from edged.link.client import Will
from edged.store.database import Store

STATE_SEQUENCE = "state"
BIRTH_TYPE = "state.online"
WILL_TYPE = "state.offline"


@dataclass(frozen=True)
class BirthInfo:
    boot_id: str
    version: str
    capabilities: list[str] = field(default_factory=list)


BirthSource = Callable[[], BirthInfo]
"""Asked at each connect: capabilities may change while the daemon runs."""


@dataclass(frozen=True)
class StateMessages:
    topic: str
    birth: Envelope
    offline: Envelope

    def will(self) -> Will:
        rule = UPLINK_RULES[Uplink.STATE]
        return Will(self.topic, self.offline.to_bytes(), rule.qos, rule.retain)


async def applied_config_version(store: Store) -> int:
    row = await store.fetchone(
        "SELECT COALESCE(MAX(version), 0) FROM config_versions WHERE status = 'applied'"
    )
    return int(row[0]) if row is not None else 0


async def state_messages(
    store: Store, topics: DeviceTopics, info: BirthInfo, broker: str
) -> StateMessages:
    """`broker` is the endpoint this connection goes to (host:port), reported in both."""
    config_version = await applied_config_version(store)
    async with store.transaction() as tx:
        birth_seq = await tx.next_sequence(STATE_SEQUENCE)
        will_seq = await tx.next_sequence(STATE_SEQUENCE)
    now = store.clock.now()
    synced = store.clock.synced()

    def body(online: bool) -> dict[str, object]:
        return dump_body(
            DeviceState(
                online=online,
                boot_id=info.boot_id,
                version=info.version,
                config_version=config_version,
                capabilities=list(info.capabilities),
                broker=broker,
            )
        )

    birth = make_envelope(
        type=BIRTH_TYPE,
        device=topics.device,
        seq=birth_seq,
        body=body(True),
        now=now,
        clock_synced=synced,
    )
    offline = make_envelope(
        type=WILL_TYPE,
        device=topics.device,
        seq=will_seq,
        body=body(False),
        now=now,
        clock_synced=synced,
    )
    return StateMessages(topics.uplink(Uplink.STATE), birth, offline)
