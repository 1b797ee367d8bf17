# ruff: noqa: RUF001
"""What the page is sent: each daemon sentence in both languages, and the technician gate."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from edged.services.checkout import messages as M
from edged.services.kiosk_screen.auth import TechnicianGate
from edged.services.kiosk_screen.feed import ScreenFeed
from edged.services.kiosk_screen.page_state import bilingual, render
from hal.display.view import DisplayView, ViewItem

CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")


@pytest.mark.parametrize(
    ("text", "zh", "en"),
    [
        (M.PAYMENT_IN_PROGRESS, "正在支付，请稍候", "Payment in progress"),
        (M.WELCOME.format(shop="edged 测试店"), "欢迎光临 edged 测试店", "Welcome to edged 测试店"),
        (
            M.REMOVED.format(name="可口可乐 330ml"),
            "已删除 可口可乐 330ml",
            "Removed: 可口可乐 330ml",
        ),
        (
            M.PAYMENT_ENDED.format(reason=M.CANCELLED_REASON),
            "支付未完成 已取消",
            "Payment not completed: cancelled",
        ),
        (M.TOTAL.format(amount="¥10.00"), "合计 ¥10.00", "Total ¥10.00"),
        (
            M.PAYMENT_IN_DOUBT,
            "支付未确认，商品未放行；如已扣款将自动退回",
            "Payment not confirmed: no goods released. "
            "If you were charged, it is refunded automatically; staff can help",
        ),
        ("可口可乐 330ml ¥3.50", "可口可乐 330ml ¥3.50", "可口可乐 330ml ¥3.50"),
        ("<b>x</b> ¥1.00", "<b>x</b> ¥1.00", "<b>x</b> ¥1.00"),
    ],
)
def test_a_sentence_reads_in_each_language(text: str, zh: str, en: str) -> None:
    assert bilingual(text) == {"zh": zh, "en": en}


def test_every_shopper_sentence_has_some_english() -> None:
    for name, sentence in vars(M).items():
        if name.isupper() and not name.startswith("RECEIPT") and isinstance(sentence, str):
            text = sentence.replace("{no:06d}", "{no}").format(
                shop="S", name="N", reason="R", problem="P", method="M", amount="A", time="T", no=1
            )
            english = bilingual(text)["en"]
            assert not CJK.search(english), (name, english)


def test_the_feed_numbers_each_change_after_its_snapshot() -> None:
    sent: list[str] = []
    feed = ScreenFeed("boot-1", render)
    feed.show(DisplayView(headline="a", kind="welcome"))
    assert '"seq": 1' in feed.snapshot()
    feed.subscribe(sent.append)
    view = DisplayView(
        headline="b",
        kind="basket",
        items=[ViewItem(line=1, name="<i>n</i>", quantity=2, unit_price="¥1.00", amount="¥2.00")],
        total="¥2.00",
        expires_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    feed.show(view)
    feed.set_out_of_service(True)
    feed.set_out_of_service(True)  # no change, no message
    assert len(sent) == 2
    assert (
        '"seq": 2' in sent[0]
        and '"<i>n</i>"' in sent[0]
        and '"expires_at_ms": 1767225600000' in sent[0]
    )
    assert sent[1].endswith('"seq": 3, "set": {"out_of_service": true}}')


@dataclass
class ManualClock:
    now: float = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_wrong_tokens_double_the_wait_and_the_right_one_resets_it() -> None:
    clock = ManualClock()
    gate = TechnicianGate("s3cret", clock)  # type: ignore[arg-type]
    waits = []
    for _ in range(4):
        assert gate.login("guess").session is None
        waits.append(gate.login("s3cret").retry_after_s)  # refused unseen while backing off
        clock.now += waits[-1]
    assert waits == [0.5, 1.0, 2.0, 4.0]
    session = gate.login("s3cret").session
    assert session and gate.valid(session) and not gate.valid(session + "x")
    assert gate.login("guess").session is None
    clock.now += 0.5
    assert gate.login("s3cret").session, "after a success the wait starts at 0.5 s again"
    clock.now += 8 * 3600 + 1
    assert not gate.valid(session), "a session ends after 8 hours"
    assert not gate.valid("") and not gate.valid(None)
    assert gate.login("非ascii").session is None  # a non-ASCII guess is compared, not a crash
