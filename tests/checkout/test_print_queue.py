"""The durable print queue: paper out, printer errors, restarts and reprints."""

from __future__ import annotations

from edged.services.checkout.service import Phase
from edged.services.payments.protocol import PaymentOutcome
from hal.device import DeviceError
from hal.printer.document import PrintDocument
from hal.printer.protocol import PaperState
from tests.checkout.conftest import COLA, WATER, WECHAT_CODE, Kiosk, KioskFactory, eventually


async def pay(kiosk: Kiosk) -> str:
    await kiosk.scan(WATER)
    await kiosk.scan(COLA)
    assert kiosk.checkout.sale is not None
    sale_id = kiosk.checkout.sale.id
    await kiosk.scan(WECHAT_CODE)
    await kiosk.payments.finish(kiosk.payments.trade_for(sale_id), PaymentOutcome.PAID)
    return sale_id


async def jobs(kiosk: Kiosk) -> list[tuple[str, str]]:
    rows = await kiosk.store.fetchall("SELECT kind, state FROM print_jobs ORDER BY id")
    return [(r["kind"], r["state"]) for r in rows]


def receipts(kiosk: Kiosk) -> list[str]:
    return sorted(p.name for p in (kiosk.path / "printer").glob("receipt-*.txt"))


async def test_paper_out_keeps_the_job_and_prints_it_once_paper_returns(
    make_kiosk: KioskFactory,
) -> None:
    kiosk = await make_kiosk()
    kiosk.printer.state = PaperState(paper_out=True)
    await pay(kiosk)

    await eventually(lambda: _problem_is(kiosk, "printer out of paper"))
    assert await jobs(kiosk) == [("receipt", "queued")]
    assert receipts(kiosk) == []
    assert kiosk.headline.startswith("欢迎光临")
    assert kiosk.display.current is not None
    assert kiosk.display.current.lines[0] == (
        "小票暂未打印，请联系店员 Receipt waiting: printer out of paper"  # noqa: RUF001
    )
    assert kiosk.display.current.tone == "error"
    status = await kiosk.checkout.status()
    assert status["print_queue"]["queued"] == 1
    assert status["print_queue"]["problem"] == "printer out of paper"

    kiosk.printer.state = PaperState()  # staff loads paper
    await eventually(lambda: _printed(kiosk, 1))
    await eventually(lambda: _phase(kiosk, Phase.IDLE))
    assert await jobs(kiosk) == [("receipt", "printed")]
    assert receipts(kiosk) == ["receipt-000001.txt"]
    status = await kiosk.checkout.status()
    assert status["print_queue"] == {"queued": 0, "printed": 1, "failed": 0, "problem": ""}
    assert kiosk.display.current is not None and kiosk.display.current.tone == "info"
    row = await kiosk.store.fetchone("SELECT attempts, last_error FROM print_jobs")
    assert row is not None and row["attempts"] >= 2
    assert row["last_error"] == "printer out of paper"


async def test_device_error_retries_until_the_printer_answers(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk()
    real_print = kiosk.printer.print
    failures = [DeviceError("USB write timed out"), DeviceError("USB write timed out")]

    async def flaky(document: PrintDocument) -> None:
        if failures:
            raise failures.pop()
        await real_print(document)

    kiosk.printer.print = flaky  # type: ignore[method-assign]
    await pay(kiosk)
    await eventually(lambda: _printed(kiosk, 1))
    assert await jobs(kiosk) == [("receipt", "printed")]
    assert receipts(kiosk) == ["receipt-000001.txt"]


async def test_restart_prints_a_paid_receipt_that_never_printed(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk(printing=False)  # the printer worker never got to it
    await pay(kiosk)
    await eventually(lambda: _phase(kiosk, Phase.PAID))
    await kiosk.stop()
    assert receipts(kiosk) == []

    again = await make_kiosk()
    await eventually(lambda: _printed(again, 1))
    assert await jobs(again) == [("receipt", "printed")]
    assert receipts(again) == ["receipt-000001.txt"]
    await again.stop()

    third = await make_kiosk()  # and a further restart does not print it again
    await eventually(lambda: _recovered(third))
    assert receipts(third) == ["receipt-000001.txt"]


async def test_reprint_prints_a_marked_copy(make_kiosk: KioskFactory) -> None:
    kiosk = await make_kiosk()
    sale_id = await pay(kiosk)
    await eventually(lambda: _printed(kiosk, 1))
    await kiosk.queue.reprint(sale_id)
    await eventually(lambda: _printed(kiosk, 2))
    assert await jobs(kiosk) == [("receipt", "printed"), ("reprint", "printed")]
    copy = (kiosk.path / "printer" / "receipt-000002.txt").read_text("utf-8")
    assert "** 重印 COPY **" in copy and "可口可乐 330ml" in copy


async def test_reprint_of_nothing_is_a_clear_error(make_kiosk: KioskFactory) -> None:
    import pytest

    from edged.services.printing.queue import ReprintError

    kiosk = await make_kiosk()
    with pytest.raises(ReprintError, match="no receipt to reprint for any sale"):
        await kiosk.queue.reprint()
    assert await jobs(kiosk) == []


async def _problem_is(kiosk: Kiosk, problem: str) -> bool:
    return (
        kiosk.queue.problem == problem
        and kiosk.display.current is not None
        and (kiosk.display.current.tone == "error")
    )


async def _printed(kiosk: Kiosk, count: int) -> bool:
    row = await kiosk.store.fetchone("SELECT COUNT(*) FROM print_jobs WHERE state = 'printed'")
    return row is not None and row[0] >= count


async def _phase(kiosk: Kiosk, phase: Phase) -> bool:
    return kiosk.checkout.phase is phase


async def _recovered(kiosk: Kiosk) -> bool:
    return bool((await kiosk.checkout.status())["recovered"])


async def test_a_job_that_can_never_print_is_failed_and_the_next_one_prints(
    make_kiosk: KioskFactory,
) -> None:
    """E.g. a receipt whose sale is gone or a document damaged on disk: no endless retry."""
    kiosk = await make_kiosk()
    async with kiosk.store.transaction() as tx:
        await tx.execute(
            "INSERT INTO print_jobs (sale_id, kind, document, created_at) "
            "VALUES ('no-such-sale', 'receipt', NULL, ?), (NULL, 'note', '{\"blocks\": 7}', ?)",
            (tx.now, tx.now),
        )
    kiosk.queue.wake()
    await pay(kiosk)

    await eventually(lambda: _printed(kiosk, 1))
    rows = await kiosk.store.fetchall("SELECT kind, state, last_error FROM print_jobs ORDER BY id")
    assert [(r["kind"], r["state"]) for r in rows] == [
        ("receipt", "failed"),
        ("note", "failed"),
        ("receipt", "printed"),
    ]
    assert rows[0]["last_error"] == "sale no-such-sale is not a paid sale"
    assert rows[1]["last_error"].startswith("unreadable document")
    assert receipts(kiosk) == ["receipt-000001.txt"]
