"""SIGKILL of the daemon at each refund state, then restart: always exactly one refund.

After every restart the kiosk and the cloud agree: one refund row, succeeded; the cloud moved
the money back once for that refund number; one `txn.refunded` record reached the cloud.
"""

from __future__ import annotations

import time

from edged.cloudsim.scenarios import RefundScenario
from tests.e2e.kiosk import Kiosk
from tests.link.helpers import Observer
from tests.refunds.test_refunds_e2e import (
    cloud_refunds,
    refund_op,
    refund_rows,
    sell,
    txns,
    wait_refund_state,
)


def assert_one_refund(kiosk: Kiosk, uplink: Observer, sale_id: str) -> None:
    wait_refund_state(kiosk, sale_id, 1, "succeeded")
    [row] = refund_rows(kiosk, sale_id)
    [(refund_no, cloud)] = cloud_refunds(kiosk).items()
    assert refund_no == row["refund_no"]
    assert cloud["money_moves"] == 1
    uplink.wait_for(lambda _m: len(txns(uplink, "txn.refunded")) >= 1)
    kiosk.wait(
        "the refund record at the cloud",
        lambda _s: [t["type"] for t in kiosk.cloud_txns()].count("txn.refunded") == 1,
    )
    ids = {t["body"]["refund_no"] for t in kiosk.cloud_txns() if t["type"] == "txn.refunded"}
    assert ids == {refund_no}


def test_killed_while_requested(kiosk: Kiosk, uplink: Observer) -> None:
    sale_id = sell(kiosk)
    kiosk.sim.hold()
    refund_op(kiosk, {"request_id": "crash-req-01", "sale_id": sale_id, "kind": "full"})
    wait_refund_state(kiosk, sale_id, 1, "requested")
    time.sleep(1.0)  # the request, and a retry of it, wait at the held backend
    kiosk.daemon.kill()
    kiosk.sim.release()  # the backend refunds while the kiosk is down
    kiosk.restart()
    assert_one_refund(kiosk, uplink, sale_id)
    assert cloud_refunds(kiosk)[refund_rows(kiosk, sale_id)[0]["refund_no"]]["requests"] >= 2


def test_killed_while_processing(kiosk: Kiosk, uplink: Observer) -> None:
    kiosk.sim.settings.refund_scenario = RefundScenario.PROCESSING
    kiosk.sim.settings.refund_processing_s = 3.0
    sale_id = sell(kiosk)
    refund_op(kiosk, {"request_id": "crash-prc-01", "sale_id": sale_id, "kind": "full"})
    wait_refund_state(kiosk, sale_id, 1, "processing")
    kiosk.daemon.kill()
    kiosk.restart()
    assert_one_refund(kiosk, uplink, sale_id)


def test_killed_right_after_it_succeeded(kiosk: Kiosk, uplink: Observer) -> None:
    sale_id = sell(kiosk)
    refund_op(kiosk, {"request_id": "crash-suc-01", "sale_id": sale_id, "kind": "full"})
    wait_refund_state(kiosk, sale_id, 1, "succeeded")
    kiosk.daemon.kill()
    kiosk.restart()
    refund_op(kiosk, {"request_id": "crash-suc-01", "sale_id": sale_id, "kind": "full"})
    time.sleep(0.5)
    assert_one_refund(kiosk, uplink, sale_id)


def test_killed_as_the_command_arrives_twice_over(kiosk: Kiosk, uplink: Observer) -> None:
    sale_id = sell(kiosk)
    refund_op(kiosk, {"request_id": "crash-any-01", "sale_id": sale_id, "kind": "full"})
    kiosk.daemon.kill()  # wherever it was: not yet applied, requested, or succeeded
    kiosk.restart()
    kiosk.daemon.kill()
    kiosk.restart()
    assert_one_refund(kiosk, uplink, sale_id)
