"""`op.door.unlock` end to end: the operator's signed command -> Mosquitto -> the daemon as a
process -> the door's relay board, a real pseudo-terminal. One request, exactly one unlock
frame; the same request again, its stored reply and not one byte more."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edged.cloudsim.scenarios import Settings
from edged.contract.bodies import OpState
from edged.fleetctl.keys import generate_key
from edged.fleetctl.messages import op_command, op_topic
from tests.e2e.kiosk import code
from tests.e2e.vending import OFF, ON, Vending, write_vending_config
from tests.fleet.harness import DEVICE, ROOT, SITE, Fleet
from tests.link.helpers import Observer
from tests.support.kiosk_fixture import running_kiosk
from tests.support.mosquitto import Mosquitto
from tests.support.pty import Pty

INTERLOCK = "refused: a payment is open; try again when the kiosk is idle"


@contextmanager
def door_fleet(
    mosquitto: Mosquitto, tmp_path: Path, *, plugged: bool = True
) -> Iterator[tuple[Fleet, Vending]]:
    """A vending counter (one door on a pty relay board) that trusts the operator's key."""
    relay = Pty(tmp_path / "edged-relay")
    if not plugged:
        relay.unplug()
    key_file = tmp_path / "operator" / "key.pem"
    public = generate_key(key_file)

    def write(config: Path, data: Path, port: int) -> None:
        write_vending_config(config, data, port, relay.link, open_within_s=30)
        with config.open("a", encoding="utf-8") as out:
            out.write(f'\n[security]\ntrusted_keys = ["{public}"]\n')

    observer = Observer("127.0.0.1", mosquitto.port, [f"{ROOT}/#"]).start()
    try:
        settings = Settings(user_paying_s=1.5)
        with running_kiosk(mosquitto, tmp_path, write=write, settings=settings) as kiosk:
            counter = Vending(kiosk.broker, kiosk.daemon, kiosk.sim, kiosk.data)
            counter.relay = relay
            yield Fleet(counter, key_file, tmp_path, observer), counter
    finally:
        observer.stop()
        relay.close()


def replies(fleet: Fleet, request_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (e.body["state"], e.body["reason"], e.body["result"])
        for e in fleet.envelopes(f"rsp/{request_id}")
    ]


def releases(counter: Vending) -> list[dict[str, Any]]:
    return counter.rows(
        "SELECT id, sale_id, order_id, request_id, slot, state FROM releases ORDER BY id"
    )


def test_one_unlock_per_request_and_the_same_request_again_gets_the_stored_reply(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with door_fleet(mosquitto, tmp_path) as (fleet, counter):
        assert counter.relay.read_exactly(4) == OFF  # starting switched the lock off
        envelope = op_command(SITE, DEVICE, "door.unlock", {"slot": 1}, fleet.operator_key())
        request_id = envelope.body["request_id"]
        done = ("succeeded", "", {"release_id": 1, "slot": 1})

        fleet.observer.publish(op_topic(SITE, DEVICE), envelope.to_bytes())

        fleet.wait_for("succeeded", lambda: len(replies(fleet, request_id)) == 2)
        assert replies(fleet, request_id) == [("accepted", "", {}), done]
        assert counter.relay.read_exactly(4) == ON
        assert releases(counter) == [
            {
                "id": 1,
                "sale_id": None,
                "order_id": None,
                "request_id": request_id,
                "slot": 1,
                "state": "unlocked",
            }
        ]
        # The same envelope again (a replay), then the same request in a new envelope (the
        # operator sent it again): each time the stored reply, never a second unlock.
        fleet.observer.publish(op_topic(SITE, DEVICE), envelope.to_bytes())
        fleet.wait_for("stored reply", lambda: len(replies(fleet, request_id)) == 3)
        again = op_command(
            SITE, DEVICE, "door.unlock", {"slot": 1}, fleet.operator_key(), request_id=request_id
        )
        assert again.id != envelope.id
        fleet.observer.publish(op_topic(SITE, DEVICE), again.to_bytes())
        fleet.wait_for("stored reply", lambda: len(replies(fleet, request_id)) == 4)
        assert replies(fleet, request_id)[2:] == [done, done]
        time.sleep(0.5)
        assert counter.relay.read_all() == b""
        assert len(releases(counter)) == 1

        # The door's events follow the request's release as they follow a sale's.
        counter.door("open")
        counter.wait_release("opened")
        assert counter.relay.read_exactly(4) == OFF
        counter.door("closed")
        counter.wait_release("closed")
        assert counter.relay.read_all() == b""
        counter.wait(
            "the door's story at the cloud",
            lambda _s: (
                counter.cloud()["releases"].get("1") == ["pending", "unlocked", "opened", "closed"]
            ),
        )
        assert counter.refund_marks() == []


def test_refused_while_a_payment_is_open_and_an_unknown_slot_is_rejected(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with door_fleet(mosquitto, tmp_path) as (fleet, counter):
        assert counter.relay.read_exactly(4) == OFF

        unknown = fleet.op("door.unlock", "slot=2")

        assert unknown.returncode == 1
        *_, final = fleet.replies(unknown)
        assert (final.state, final.reason, final.result) == (
            OpState.REJECTED,
            "slot 2 does not exist; the release device has slots 1-1",
            {},
        )
        counter.fill_basket()
        counter.scan(code("03"))  # the shopper never confirms: the payment stays open
        counter.wait_payment_state("user_paying")

        refused = fleet.op("door.unlock", "slot=1")

        assert refused.returncode == 1
        (reply,) = fleet.replies(refused)
        assert (reply.state, reply.reason) == (OpState.REJECTED, INTERLOCK)
        time.sleep(0.5)
        assert counter.relay.read_all() == b""
        assert releases(counter) == []


def test_an_unplugged_relay_board_fails_the_command_with_the_devices_reason(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with door_fleet(mosquitto, tmp_path, plugged=False) as (fleet, counter):
        result = fleet.op("door.unlock", "slot=1")

        assert result.returncode == 1
        *_, final = fleet.replies(result)
        assert final.state is OpState.FAILED
        assert final.reason == "the door did not unlock: the release device is not running"
        [row] = releases(counter)
        assert (row["state"], row["request_id"]) == ("failed", final.request_id)
        assert counter.refund_marks() == []
