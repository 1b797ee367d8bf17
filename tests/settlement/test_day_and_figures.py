"""The business day, the figures and the reconciliation rules as pure functions."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edged.contract.bodies import ReconTxn
from edged.contract.txn_summary import summarize
from edged.services.settlement.day import (
    DayError,
    business_day,
    day_bounds,
    next_cutover,
    shop_zone,
)
from edged.services.settlement.figures import JournalTxn, digest, figures
from edged.services.settlement.identity import (
    IdentityError,
    create_identity,
    identity_public_b64,
    load_identity,
)
from edged.services.settlement.recon import Difference, classify, ranges

SHANGHAI = ZoneInfo("Asia/Shanghai")
FOUR = time(4, 0)


@pytest.mark.parametrize(
    ("local", "day"),
    [
        (datetime(2026, 12, 1, 23, 59, 59), date(2026, 12, 1)),
        (datetime(2026, 12, 2, 0, 0, 0), date(2026, 12, 1)),  # past midnight: still yesterday
        (datetime(2026, 12, 2, 3, 59, 59), date(2026, 12, 1)),
        (datetime(2026, 12, 2, 4, 0, 0), date(2026, 12, 2)),  # the cut-over starts a new day
    ],
)
def test_a_moment_belongs_to_the_business_day_of_the_shop(local: datetime, day: date) -> None:
    moment = local.replace(tzinfo=SHANGHAI).astimezone(UTC)
    assert business_day(moment, SHANGHAI, FOUR) == day


def test_a_day_runs_from_cutover_to_cutover_and_the_next_one_is_after_now() -> None:
    start, end = day_bounds(date(2026, 12, 1), SHANGHAI, FOUR)
    assert (start.isoformat(), end.isoformat()) == (
        "2026-12-01T04:00:00+08:00",
        "2026-12-02T04:00:00+08:00",
    )
    now = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)  # 04:00 in Shanghai on the 2nd
    assert next_cutover(now, SHANGHAI, FOUR) == datetime(2026, 12, 3, 4, 0, tzinfo=SHANGHAI)


def test_an_unknown_zone_is_named() -> None:
    with pytest.raises(DayError, match="unknown time zone 'Mars/Olympus'"):
        shop_zone("Mars/Olympus")


def test_the_figures_count_sales_by_method_refunds_net_voids_range_and_digest() -> None:
    txns = [
        JournalTxn(4, "id-a", "completed", 1000, "wechat"),
        JournalTxn(5, "id-b", "completed", 350, "alipay"),
        JournalTxn(6, "id-c", "voided", 0, ""),
        JournalTxn(9, "id-d", "refunded", 200, "wechat"),
        JournalTxn(10, "id-e", "completed", 450, "wechat"),
    ]
    assert figures(txns) == {
        "sales": {"count": 3, "total_fen": 1800},
        "by_method": [
            {"method": "alipay", "count": 1, "total_fen": 350},
            {"method": "wechat", "count": 2, "total_fen": 1450},
        ],
        "refunds": {"count": 1, "total_fen": 200},
        "refunds_by_method": [{"method": "wechat", "count": 1, "total_fen": 200}],
        "net_fen": 1600,
        "voided": {"count": 1},
        "txn_count": 5,
        "first_txn_seq": 4,
        "last_txn_seq": 10,
        "digest": digest(["id-a", "id-b", "id-c", "id-d", "id-e"]),
    }
    assert digest(["id-a", "id-b"]) == hashlib.sha256(b"id-a\nid-b\n").hexdigest()
    assert figures([])["digest"] == hashlib.sha256(b"").hexdigest()


def test_differences_are_classified_and_resendable_ones_fold_into_ranges() -> None:
    local = [
        JournalTxn(1, "txn-0001", "completed", 100, "wechat"),
        JournalTxn(2, "txn-0002", "completed", 200, "wechat"),
        JournalTxn(3, "txn-0003", "completed", 300, "wechat"),
        JournalTxn(5, "txn-0005", "refunded", 50, "wechat"),
    ]
    remote = [
        ReconTxn(txn_id="txn-0001", amount_fen=100),
        ReconTxn(txn_id="txn-0003", amount_fen=301),
        ReconTxn(txn_id="txn-9999", amount_fen=7),
    ]
    assert classify(local, remote) == [
        Difference("txn-0002", "local_only", 2, 200, None),
        Difference("txn-0003", "amount_mismatch", 3, 300, 301),
        Difference("txn-0005", "local_only", 5, 50, None),
        Difference("txn-9999", "remote_only", None, None, 7),
    ]
    assert ranges([2, 3, 5, 9, 10, 11, 3]) == [(2, 3), (5, 5), (9, 11)]


def test_the_journal_summary_reads_each_kind_and_refuses_to_guess() -> None:
    completed = {"status": "completed", "completed_at": "2026-12-01T10:00:00.000Z",
                 "payments": [{"method": "alipay", "amount_fen": 350}]}  # fmt: skip
    refunded = {"status": "refunded", "succeeded_at": "2026-12-02T01:00:00.000Z",
                "amount_fen": 120, "method": "wechat"}  # fmt: skip
    voided = {"status": "voided", "completed_at": "2026-12-01T11:00:00.000Z", "payments": []}
    assert summarize("txn.completed", completed).__dict__ == {
        "status": "completed", "at": "2026-12-01T10:00:00.000Z", "amount_fen": 350,
        "method": "alipay",
    }  # fmt: skip
    refund = summarize("txn.refunded", refunded)
    assert (refund.amount_fen, refund.at) == (120, "2026-12-02T01:00:00.000Z")
    assert summarize("txn.voided", voided).amount_fen == 0
    assert summarize("txn.release", {"state": "opened"}).status == "other"
    odd = {"status": "completed", "payments": [{"amount_fen": 1.5}]}
    assert summarize("txn.completed", odd).amount_fen == 0


def test_an_identity_key_is_made_once_0600_and_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    key = create_identity(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert identity_public_b64(load_identity(path)) == identity_public_b64(key)
    with pytest.raises(IdentityError, match="never replaced"):
        create_identity(path)
    assert identity_public_b64(load_identity(path)) == identity_public_b64(key)
    path.write_text("not a key")
    with pytest.raises(IdentityError, match="not a usable identity key"):
        load_identity(path)
