"""A paid sale's receipt on a real ESC/POS driver over TCP 9100, the roll ending mid-receipt.

The printer is the TCP emulator in tests/emulators, answering DLE EOT status queries like a
real one; the queue, the checkout and the display are the daemon's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hal.config import NetworkPrinter
from hal.factory import build_printer
from tests.checkout.conftest import KioskFactory, eventually
from tests.checkout.test_print_queue import jobs, pay
from tests.emulators.escpos_printer import PrinterEmulator


@pytest.fixture
async def emulator() -> AsyncIterator[PrinterEmulator]:
    emu = PrinterEmulator()
    await emu.start()
    yield emu
    await emu.stop()


async def test_paper_out_mid_receipt_waits_says_why_and_prints_once_when_paper_returns(
    make_kiosk: KioskFactory, emulator: PrinterEmulator, tmp_path: object
) -> None:
    printer = build_printer(
        NetworkPrinter(
            driver="network",
            host="127.0.0.1",
            port=emulator.port,
            status_timeout_s=0.3,
            job_timeout_s=0.5,
        ),
        data_dir=None,  # type: ignore[arg-type]
    )
    kiosk = await make_kiosk(printer=printer)
    emulator.run_out_after(150)  # the roll ends a few lines into the receipt

    sale_id = await pay(kiosk)

    async def waiting_for_paper() -> bool:
        status = await kiosk.checkout.status()
        return bool(status["print_queue"]["problem"] == "printer out of paper")

    await eventually(waiting_for_paper, within_s=5)
    assert await jobs(kiosk) == [("receipt", "queued")]
    assert printer.status().detail == "printer out of paper"
    assert kiosk.display.current is not None
    assert "printer out of paper" in kiosk.display.current.lines[0]
    assert [r for r in emulator.receipts() if r.cut] == []

    emulator.load_paper()  # staff changes the roll

    async def printed() -> bool:
        return await jobs(kiosk) == [("receipt", "printed")]

    await eventually(printed, within_s=5)
    complete = [r for r in emulator.receipts() if r.cut]
    assert len(complete) == 1, "the receipt prints exactly once"
    [receipt] = complete
    assert "便利店 Test Shop" in receipt.text
    assert "农夫山泉" in receipt.text and "可口可乐" in receipt.text
    assert receipt.qr == [f"https://mp.example.com/o/{sale_id}"]
    status = await kiosk.checkout.status()
    assert status["print_queue"]["problem"] == ""
    await printer.close()
