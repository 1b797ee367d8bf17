"""Operations commands end to end: `edged fleet op` -> Mosquitto -> the daemon -> rsp/{id}.

Every command answers with jobs-like states committed with each reply; the operator's exit
code says the outcome. Interlocked commands never disturb a shopper's open payment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edged.contract.bodies import OpState, StockSnapshot
from edged.contract.envelope import make_envelope
from edged.contract.signing import sign_envelope
from edged.fleetctl.messages import op_command, op_topic
from tests.e2e.kiosk import code
from tests.fleet.harness import DEVICE, SITE, Fleet, fleet_kiosk
from tests.support.mosquitto import Mosquitto


@pytest.fixture
def fleet(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Fleet]:
    with fleet_kiosk(mosquitto, tmp_path) as f:
        yield f


def paid_and_idle(s: dict[str, Any]) -> bool:
    return s["checkout"]["state"] == "idle" and s["checkout"]["last_paid_sale"] is not None


def sell(fleet: Fleet, ending: str = "89") -> None:
    fleet.kiosk.fill_basket()
    fleet.kiosk.scan(code(ending))
    fleet.kiosk.wait("paid", paid_and_idle)
    fleet.kiosk.wait_settled()


def states(fleet: Fleet, result: Any) -> list[str]:
    return [reply.state.value for reply in fleet.replies(result)]


def test_reprint_prints_one_marked_copy_and_succeeds(fleet: Fleet) -> None:
    sell(fleet)

    result = fleet.op("reprint")

    assert result.returncode == 0, result.stderr
    assert states(fleet, result) == ["accepted", "succeeded"]
    fleet.kiosk.wait("copy printed", lambda _s: len(fleet.kiosk.receipts()) == 2)
    original, copy = fleet.kiosk.receipts()
    assert "重印 COPY" in copy and "重印 COPY" not in original


def test_reprint_with_nothing_to_print_fails_with_the_reason(fleet: Fleet) -> None:
    result = fleet.op("reprint")

    assert result.returncode == 1
    *_, final = fleet.replies(result)
    assert (final.state, final.reason) == (OpState.FAILED, "no receipt to reprint for any sale")


def test_drawer_opens_when_idle_and_is_refused_while_a_payment_is_open(fleet: Fleet) -> None:
    drawer_log = fleet.kiosk.data / "printer" / "drawer.log"

    opened = fleet.op("drawer.open")

    assert opened.returncode == 0, opened.stderr
    assert drawer_log.read_text() == "drawer opened (1)\n"
    fleet.kiosk.fill_basket()
    fleet.kiosk.scan(code("03"))  # the shopper never confirms: the payment stays open
    fleet.kiosk.wait_payment_state("user_paying")

    refused = fleet.op("drawer.open")

    assert refused.returncode == 1
    (reply,) = fleet.replies(refused)
    assert (reply.state, reply.reason) == (
        OpState.REJECTED,
        "refused: a payment is open; try again when the kiosk is idle",
    )
    assert drawer_log.read_text() == "drawer opened (1)\n"


def test_diagnostics_report_status_and_log_lines_without_codes_keys_or_tokens(
    fleet: Fleet,
) -> None:
    shown = code("89")
    fleet.kiosk.fill_basket()
    fleet.kiosk.scan(shown)
    fleet.kiosk.wait("paid", paid_and_idle)

    result = fleet.op("diagnostics", "log_lines=200")

    assert result.returncode == 0, result.stderr
    *_, final = fleet.replies(result)
    assert final.state is OpState.SUCCEEDED
    assert final.result["status"]["device"] == {"site": SITE, "id": DEVICE}
    assert 5 <= len(final.result["log"]) <= 200
    assert any('"event": "ready"' in line for line in final.result["log"])
    text = json.dumps(final.result, ensure_ascii=False)
    assert shown not in text
    assert "tech-secret-4711" not in text
    assert "PRIVATE KEY" not in text and fleet.key_file.read_text() not in text
    assert len(result.stdout.encode()) < 64 * 1024


def test_stock_resync_sends_the_whole_catalog_in_pages(fleet: Fleet) -> None:
    result = fleet.op("stock.resync", "page_size=4")

    assert result.returncode == 0, result.stderr
    *_, final = fleet.replies(result)
    products, pages = final.result["products"], final.result["pages"]
    assert products >= 5 and pages == -(-products // 4)
    fleet.wait_for("all pages", lambda: len(fleet.envelopes("evt/stock")) == pages)
    snapshots = [StockSnapshot.model_validate(e.body) for e in fleet.envelopes("evt/stock")]
    assert [s.page for s in snapshots] == list(range(1, pages + 1))
    barcodes = [item.barcode for s in snapshots for item in s.items]
    assert len(barcodes) == len(set(barcodes)) == products
    assert "6901028075831" in barcodes


def test_log_level_changes_for_a_while_and_says_until_when(fleet: Fleet) -> None:
    result = fleet.op("log.level", "level=debug", "expires_s=60")

    assert result.returncode == 0, result.stderr
    *_, final = fleet.replies(result)
    until = datetime.fromisoformat(final.result["until"])
    assert final.result["level"] == "debug"
    assert timedelta(seconds=50) < until - datetime.now(UTC) <= timedelta(seconds=61)


def test_an_unknown_command_is_refused_with_the_nearest_names(fleet: Fleet) -> None:
    result = fleet.op("reprnt")

    assert result.returncode == 2
    assert "unknown command 'reprnt'" in result.stderr


def test_the_same_envelope_again_gets_the_stored_reply_and_prints_nothing_more(
    fleet: Fleet,
) -> None:
    sell(fleet)
    envelope = op_command(SITE, DEVICE, "reprint", {}, fleet.operator_key())
    request_id = envelope.body["request_id"]

    fleet.observer.publish(op_topic(SITE, DEVICE), envelope.to_bytes())
    fleet.wait_for(
        "succeeded", lambda: _reply_states(fleet, request_id) == ["accepted", "succeeded"]
    )
    fleet.observer.publish(op_topic(SITE, DEVICE), envelope.to_bytes())

    fleet.wait_for("stored reply", lambda: len(_reply_states(fleet, request_id)) == 3)
    assert _reply_states(fleet, request_id) == ["accepted", "succeeded", "succeeded"]
    fleet.kiosk.wait_settled()
    assert len(fleet.kiosk.receipts()) == 2


def test_an_expired_command_times_out_and_has_no_effect(fleet: Fleet) -> None:
    drawer_log = fleet.kiosk.data / "printer" / "drawer.log"
    # A kiosk whose clock is not NTP-synced judges expiry by the newest signed `ts` it saw.
    assert fleet.op("log.level", "level=info", "expires_s=60").returncode == 0
    old = datetime.now(UTC) - timedelta(hours=1)
    envelope = sign_envelope(
        make_envelope(
            type="op.drawer.open",
            device=DEVICE,
            seq=1,
            now=old,
            clock_synced=True,
            body={"request_id": "expired-0001"},
            ttl=timedelta(minutes=5),
        ),
        fleet.operator_key(),
    )

    fleet.observer.publish(op_topic(SITE, DEVICE), envelope.to_bytes())

    fleet.wait_for("timed out", lambda: _reply_states(fleet, "expired-0001") == ["timed_out"])
    assert not drawer_log.exists()
    assert fleet.kiosk.status()["link"]["downlink"]["rejected"]["expired"] == 1


def test_an_unsigned_command_is_rejected_and_has_no_effect(fleet: Fleet) -> None:
    envelope = make_envelope(
        type="op.drawer.open",
        device=DEVICE,
        seq=1,
        now=datetime.now(UTC),
        clock_synced=True,
        body={"request_id": "unsigned-001"},
        ttl=timedelta(minutes=5),
    )

    fleet.observer.publish(op_topic(SITE, DEVICE), envelope.to_bytes())

    fleet.wait_for("rejected", lambda: _reply_states(fleet, "unsigned-001") == ["rejected"])
    assert not (fleet.kiosk.data / "printer" / "drawer.log").exists()


def test_restart_when_idle_waits_for_the_open_payment_then_restarts(fleet: Fleet) -> None:
    before = fleet.kiosk.status()["boot_id"]
    fleet.kiosk.fill_basket()
    fleet.kiosk.scan(code("02"))  # user paying for 1.5 s, then paid
    fleet.kiosk.wait_payment_state("user_paying")

    result = fleet.op("restart", "when=idle", timeout=60)

    assert result.returncode == 0, result.stderr
    replies = fleet.replies(result)
    assert [r.state.value for r in replies] == [
        "accepted",
        "in_progress",
        "in_progress",
        "succeeded",
    ]
    assert replies[1].reason == "deferred: waiting for the current sale to end"
    assert replies[-1].reason == "restarted"
    fleet.kiosk.wait_ready()
    assert fleet.kiosk.status()["boot_id"] != before
    assert fleet.kiosk.status()["payments"]["last"]["state"] == "paid"


def _reply_states(fleet: Fleet, request_id: str) -> list[str]:
    return [e.body["state"] for e in fleet.envelopes(f"rsp/{request_id}")]
