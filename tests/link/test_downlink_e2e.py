"""Downlink end to end through a real Mosquitto: redelivery has one effect; MQTT 5 replies."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edged.contract.envelope import Envelope
from edged.contract.topics import Downlink, Uplink
from edged.link.downlink import DownlinkDelivery
from edged.store import Transaction
from tests.link.helpers import Observer, link_parts, plain_settings, signed_downlink
from tests.support.mosquitto import Mosquitto
from tests.support.polling import until

ROOT = "edge/v1/s1/k1"


async def test_redelivered_downlink_has_one_effect_and_replies_follow_mqtt5_properties(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    key = Ed25519PrivateKey.generate()
    backend = Observer(mosquitto.host, mosquitto.port, [f"{ROOT}/rsp/#"]).start()
    try:
        async with link_parts(
            tmp_path, plain_settings(mosquitto.port), trusted=[key.public_key()]
        ) as parts:
            effects: list[str] = []

            async def reprint(envelope: Envelope, tx: Transaction, where: DownlinkDelivery) -> None:
                effects.append(envelope.id)
                await parts.outbox.add(
                    tx,
                    Uplink.RESPONSE,
                    "op.done",
                    {"request": envelope.id},
                    response=where.reply_route(envelope.id),
                )

            parts.router.register(Downlink.OP, reprint)
            parts.router.ready()
            parts.start()
            await asyncio.wait_for(parts.link.subscribed.wait(), 10)

            with_props = Properties(PacketTypes.PUBLISH)
            with_props.ResponseTopic = f"{ROOT}/rsp/custom-1"
            with_props.CorrelationData = b"corr-42"
            request = signed_downlink(key)
            for _ in range(2):  # the broker (or the backend) delivering the same message twice
                backend.publish(f"{ROOT}/cmd/op", request, properties=with_props)
            plain = signed_downlink(key)
            backend.publish(f"{ROOT}/cmd/op", plain)
            # A response topic outside the device's root is not honoured (the ACL forbids it).
            outside = Properties(PacketTypes.PUBLISH)
            outside.ResponseTopic = "edge/v1/s1/k2/rsp/steal"
            outside.CorrelationData = b"corr-7"
            third = signed_downlink(key)
            backend.publish(f"{ROOT}/cmd/op", third, properties=outside)

            await backend.await_for(lambda seen: len(seen) >= 3)
            await until(lambda: parts.router.stats.rejected["replayed"] == 1, what="the replay")
            # Replies leave in outbox order: once a later request's reply is in, a wrong
            # reply to the replay would be in too.
            last = signed_downlink(key)
            backend.publish(f"{ROOT}/cmd/op", last)
            last_topic = f"{ROOT}/rsp/{Envelope.model_validate_json(last).id}"
            await backend.await_for(lambda seen: any(m.topic == last_topic for m in seen))
            assert len(effects) == 4
            assert parts.router.stats.rejected["replayed"] == 1
    finally:
        backend.stop()

    replies = {m.topic: m for m in backend.snapshot()}
    assert len(backend.snapshot()) == 4, "one reply per applied request, none for the replay"
    custom = replies[f"{ROOT}/rsp/custom-1"]
    assert custom.correlation == b"corr-42"
    request_id = Envelope.model_validate_json(request).id
    assert custom.json()["body"] == {"request": request_id}
    plain_id = Envelope.model_validate_json(plain).id
    assert replies[f"{ROOT}/rsp/{plain_id}"].correlation is None
    third_id = Envelope.model_validate_json(third).id
    assert replies[f"{ROOT}/rsp/{third_id}"].correlation == b"corr-7"
