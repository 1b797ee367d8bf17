"""Every form of PUBACK a broker may send, as the link reports it, with exact bytes.

`edged.link.client` answers the PUBACKs that say "taken" (Success, No matching subscribers,
with or without an empty property block) without paho's decoder, and leaves every other
PUBACK to paho. A scripted broker sends each form in turn to a real paho client; the pump's
callback must see None for a delivery and the broker's reason for a refusal.
"""

from __future__ import annotations

import pytest

from edged.link.client import ClientSettings, Incoming, MqttConnection
from tests.support.mosquitto import Mosquitto
from tests.support.polling import until
from tests.support.refusing_broker import RefusingBroker, _varint

REASON_STRING = 0x1F


def puback(packet_id: bytes, tail: bytes = b"") -> bytes:
    return bytes([0x40]) + _varint(2 + len(tail)) + packet_id + tail


FORMS = {
    "plain": lambda pid: puback(pid),  # 40 02 id: Success, nothing else
    "success-coded": lambda pid: puback(pid, b"\x00"),
    "no-subscribers": lambda pid: puback(pid, b"\x10"),
    "no-subscribers-empty-props": lambda pid: puback(pid, b"\x10\x00"),
    "success-with-reason-string": lambda pid: puback(
        pid, b"\x00" + _varint(6) + bytes([REASON_STRING]) + b"\x00\x03abc"
    ),
    "not-authorized": lambda pid: puback(pid, b"\x87"),
    "quota-exceeded-empty-props": lambda pid: puback(pid, b"\x97\x00"),
    "not-authorized-with-reason-string": lambda pid: puback(
        pid, b"\x87" + _varint(6) + bytes([REASON_STRING]) + b"\x00\x03acl"
    ),
}
EXPECTED = {
    "plain": None,
    "success-coded": None,
    "no-subscribers": None,
    "no-subscribers-empty-props": None,
    "success-with-reason-string": None,
    "not-authorized": "Not authorized",
    "quota-exceeded-empty-props": "Quota exceeded",
    "not-authorized-with-reason-string": "Not authorized",
}


async def publish_and_collect(
    host: str, port: int, topics: list[str], mqtt5: bool = True
) -> dict[str, str | None]:
    delivered: dict[int, str | None] = {}

    def on_message(_conn: MqttConnection, _message: Incoming) -> None:
        raise AssertionError("nothing was subscribed")

    conn = MqttConnection(
        ClientSettings(host=host, port=port, client_id="puback", mqtt5=mqtt5),
        on_message=on_message,
        on_delivered=lambda mid, failure: delivered.__setitem__(mid, failure),
    )
    await conn.open()
    try:
        mids = {topic: conn.publish(topic, b"{}", 1, False) for topic in topics}
        await until(lambda: len(delivered) == len(topics), within_s=5, what="every PUBACK")
        assert not conn.closed.done(), "every form is understood: the connection stays"
        assert conn._client._out_messages == {}, "paho forgot every acknowledged message"
    finally:
        await conn.close()
    return {topic: delivered[mid] for topic, mid in mids.items()}


async def test_each_form_of_puback_is_a_delivery_or_a_refusal_with_its_reason() -> None:
    broker = RefusingBroker(0x00, puback=lambda topic, pid: FORMS[topic](pid)).start()
    try:
        outcome = await publish_and_collect("127.0.0.1", broker.port, list(FORMS))
    finally:
        broker.stop()
    assert outcome == EXPECTED


async def test_a_puback_for_a_message_paho_does_not_hold_is_ignored() -> None:
    # a broker repeating a PUBACK (or one for a packet id never used): nothing to report
    broker = RefusingBroker(
        0x00, puback=lambda _topic, pid: puback(pid) + puback(pid) + puback(b"\x7f\xff")
    ).start()
    try:
        outcome = await publish_and_collect("127.0.0.1", broker.port, ["a", "b"])
    finally:
        broker.stop()
    assert outcome == {"a": None, "b": None}


@pytest.mark.parametrize("mqtt5", [True, False], ids=["mqtt5", "mqtt311"])
async def test_a_real_broker_s_pubacks_each_reach_the_pump(
    mosquitto: Mosquitto, mqtt5: bool
) -> None:
    topics = [f"many/{n}" for n in range(500)]  # more than one read's worth of PUBACKs
    outcome = await publish_and_collect(mosquitto.host, mosquitto.port, topics, mqtt5)
    assert outcome == dict.fromkeys(topics)


def test_the_scripted_forms_are_exactly_the_bytes_of_the_standard() -> None:
    assert FORMS["plain"](b"\x00\x07") == bytes.fromhex("4002 0007")
    assert FORMS["no-subscribers-empty-props"](b"\x00\x07") == bytes.fromhex("4004 0007 1000")
