"""Desired config end to end: `edged fleet push` -> retained cfg -> the daemon -> evt/cfg.

What an operator sees is the retained `cfg.state` on `evt/cfg` and `edged fleet status`; what
the kiosk runs is what `edged config show` prints. Every layer is pushed with the CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edged.contract.bodies import ConfigState
from edged.fleetctl.messages import Scope, config_layer
from tests.e2e.kiosk import code
from tests.fleet.harness import Fleet, fleet_kiosk
from tests.support.mosquitto import Mosquitto
from tests.support.ports import free_port

GRACE_S = 5


@pytest.fixture
def fleet(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Fleet]:
    with fleet_kiosk(mosquitto, tmp_path) as f:
        yield f


def push(
    fleet: Fleet,
    scope: str,
    version: int,
    layer: dict[str, Any],
    grace_s: int = GRACE_S,
    *,
    check: bool = True,
) -> None:
    """`edged fleet push`; `check=False` skips the operator-side check, so the device's own
    rejection is what the test sees."""
    file = fleet.workdir / f"layer-{scope.replace(':', '-').replace('/', '-')}-{version}.json"
    file.write_text(json.dumps(layer), encoding="utf-8")
    pushed = fleet.run(
        "push",
        str(file),
        "--scope",
        scope,
        "--key",
        str(fleet.key_file),
        "--version",
        str(version),
        "--grace-s",
        str(grace_s),
        *([] if check else ["--no-check"]),
        *fleet.broker,
    )
    assert pushed.returncode == 0, pushed.stderr


def states(fleet: Fleet) -> list[ConfigState]:
    return [ConfigState.model_validate(e.body) for e in fleet.envelopes("evt/cfg")]


def wait_state(fleet: Fleet, check: Any, timeout: float = 30) -> ConfigState:
    fleet.wait_for("config state", lambda: any(check(s) for s in states(fleet)), timeout)
    return next(s for s in reversed(states(fleet)) if check(s))


def shown(fleet: Fleet) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edged",
            "config",
            "show",
            "--json",
            "--config",
            str(fleet.kiosk.daemon.config_file),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=fleet.kiosk.daemon.workdir,
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def test_a_checkout_timeout_applies_live_and_the_next_basket_times_out_by_it(
    fleet: Fleet,
) -> None:
    boot = fleet.kiosk.status()["boot_id"]

    push(fleet, "device:e2e/kiosk-1", 1, {"checkout": {"inactivity_timeout_s": 1.5}})

    state = wait_state(fleet, lambda s: s.status.value == "applied" and s.applied.device == 1)
    assert state.desired.device == 1 and state.error is None
    status = fleet.wait_serving()
    assert status["boot_id"] == boot  # live: no rebuild, no reconnect
    assert status["fleet_config"]["applied"] == {"device": 1}
    config = shown(fleet)
    assert config["checkout.inactivity_timeout_s"] == {"value": 1.5, "origin": "device v1"}
    assert config["device.id"] == {"value": "kiosk-1", "origin": "file"}
    assert config["security.technician_token"]["value"] == "**********"
    fleet.kiosk.scan("6901028075831")
    fleet.kiosk.wait("basket", lambda s: s["checkout"]["state"] == "basket")
    fleet.kiosk.wait("abandoned basket cleared", lambda s: s["checkout"]["state"] == "idle", 10)


def test_a_layer_that_touches_the_link_rebuilds_the_parts_and_passes_the_gate(
    fleet: Fleet,
) -> None:
    boot = fleet.kiosk.status()["boot_id"]

    push(fleet, "device:e2e/kiosk-1", 1, {"link": {"reconnect_max_s": 2}})

    state = wait_state(fleet, lambda s: s.status.value == "applied" and s.applied.device == 1)
    assert state.error is None
    status = fleet.wait_serving()
    assert status["boot_id"] != boot
    assert shown(fleet)["link.reconnect_max_s"] == {"value": 2.0, "origin": "device v1"}
    order = [s.status.value for s in states(fleet)]
    assert order[-3:] == ["applying", "applying", "applied"]


def test_fleet_site_and_device_layers_merge_field_by_field(fleet: Fleet) -> None:
    push(fleet, "fleet", 3, {"checkout": {"inactivity_timeout_s": 60, "shop_name": "连锁店"}})
    wait_state(fleet, lambda s: s.applied.fleet == 3)
    push(fleet, "site:e2e", 2, {"health": {"interval_s": 7}})
    wait_state(fleet, lambda s: s.applied.site == 2)
    push(fleet, "device:e2e/kiosk-1", 5, {"checkout": {"inactivity_timeout_s": 30}})
    state = wait_state(fleet, lambda s: s.applied.device == 5)

    assert (state.applied.fleet, state.applied.site, state.applied.device) == (3, 2, 5)
    fleet.wait_serving()
    config = shown(fleet)
    assert config["checkout.inactivity_timeout_s"] == {"value": 30, "origin": "device v5"}
    assert config["checkout.shop_name"] == {"value": "连锁店", "origin": "fleet v3"}
    assert config["health.interval_s"] == {"value": 7, "origin": "site v2"}


def test_a_bad_type_is_rejected_with_its_dotted_key_and_changes_nothing(fleet: Fleet) -> None:
    before = fleet.kiosk.status()["fleet_config"]["effective_hash"]

    push(
        fleet, "device:e2e/kiosk-1", 1, {"checkout": {"inactivity_timeout_s": "soon"}}, check=False
    )

    state = wait_state(fleet, lambda s: s.status.value == "rejected")
    assert state.error is not None
    assert state.error.key == "checkout.inactivity_timeout_s"
    assert state.error.message == (
        "device v1: checkout.inactivity_timeout_s: Input should be a valid number, "
        "unable to parse string as a number"
    )
    assert state.applied.device is None and state.desired.device == 1
    assert state.effective_hash == before
    assert fleet.kiosk.status()["fleet_config"]["effective_hash"] == before


def test_identity_unsigned_forged_and_stale_layers_change_nothing(fleet: Fleet) -> None:
    push(fleet, "device:e2e/kiosk-1", 1, {"device": {"id": "kiosk-2"}}, check=False)
    state = wait_state(fleet, lambda s: s.status.value == "rejected")
    assert state.error is not None and state.error.key == "device.id"

    topic = Scope.parse("device:e2e/kiosk-1").topic
    unsigned = config_layer(
        Scope.parse("device:e2e/kiosk-1"),
        2,
        {"health": {"interval_s": 9}},
        Ed25519PrivateKey.generate(),
    ).model_copy(update={"sig": None})
    forged = config_layer(
        Scope.parse("device:e2e/kiosk-1"),
        3,
        {"health": {"interval_s": 9}},
        Ed25519PrivateKey.generate(),
    )
    fleet.observer.publish(topic, unsigned.to_bytes(), retain=True)
    fleet.observer.publish(topic, forged.to_bytes(), retain=True)
    fleet.kiosk.wait(
        "both refused",
        lambda s: (
            s["link"]["downlink"]["rejected"].get("unsigned") == 1
            and s["link"]["downlink"]["rejected"].get("forged") == 1
        ),
    )

    push(fleet, "device:e2e/kiosk-1", 4, {"health": {"interval_s": 9}})
    wait_state(fleet, lambda s: s.applied.device == 4)
    push(fleet, "device:e2e/kiosk-1", 4, {"health": {"interval_s": 99}})
    stale = wait_state(fleet, lambda s: "ignored" in s.note)

    assert stale.note == "device v4 ignored: not newer than v4"
    fleet.wait_serving()
    assert shown(fleet)["health.interval_s"] == {"value": 9, "origin": "device v4"}


def test_a_dead_broker_port_is_rolled_back_within_the_grace_and_the_device_comes_back(
    fleet: Fleet,
) -> None:
    push(fleet, "device:e2e/kiosk-1", 1, {"broker": {"port": free_port()}}, grace_s=GRACE_S)

    state = wait_state(fleet, lambda s: s.status.value == "rolled_back", timeout=GRACE_S + 30)

    assert state.error is not None
    assert state.error.message == (
        f"health gate failed after {GRACE_S} s: not connected to the broker"
    )
    assert state.applied.device is None
    fleet.wait_serving()
    assert fleet.op("log.level", "level=info", "expires_s=60").returncode == 0


def test_sigkill_inside_the_grace_ends_in_the_committed_config(fleet: Fleet) -> None:
    push(fleet, "device:e2e/kiosk-1", 1, {"checkout": {"inactivity_timeout_s": 44}})
    wait_state(fleet, lambda s: s.applied.device == 1)
    fleet.wait_serving()
    push(fleet, "device:e2e/kiosk-1", 2, {"broker": {"port": free_port()}}, grace_s=60)
    wait_state(fleet, lambda s: s.status.value == "applying" and s.version == 2)

    fleet.kiosk.daemon.kill()  # inside the grace, with the candidate running
    fleet.kiosk.daemon.start()  # second start with the candidate: still dead port
    fleet.kiosk.daemon.kill()
    fleet.kiosk.daemon.start()  # third start: rolled back at start
    fleet.wait_serving()

    state = wait_state(fleet, lambda s: s.status.value == "rolled_back")
    assert state.applied.device == 1
    assert state.error is not None and state.error.message == (
        "rolled back at start: the daemon stopped 2 times inside the health gate"
    )
    assert shown(fleet)["checkout.inactivity_timeout_s"] == {"value": 44, "origin": "device v1"}


def test_a_layer_during_a_user_paying_payment_is_deferred_until_it_ends(fleet: Fleet) -> None:
    fleet.kiosk.fill_basket()
    fleet.kiosk.scan(code("02"))  # user paying for 1.5 s, then paid
    fleet.kiosk.wait_payment_state("user_paying")

    push(fleet, "device:e2e/kiosk-1", 1, {"checkout": {"inactivity_timeout_s": 50}})

    wait_state(fleet, lambda s: s.status.value == "deferred")
    applied = wait_state(fleet, lambda s: s.status.value == "applied" and s.applied.device == 1)
    assert applied.version == 1
    fleet.wait_serving()
    assert fleet.kiosk.status()["payments"]["last"]["state"] == "paid"
    order = [s.status.value for s in states(fleet)]
    assert order == ["deferred", "applied"]  # a checkout change applies live once it may
