"""The ESC/POS printer driver against the TCP 9100 printer emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest
import qrcode

from hal.camera.decoder import make_decoder
from hal.config import NetworkPrinter
from hal.device import DeviceError
from hal.factory import build_printer
from hal.printer.document import Columns, PrintDocument, QrCode, Rule, Text
from hal.printer.escpos_device import EscposPrinter
from hal.printer.protocol import PaperState, PrinterNotReady
from hal.printer.status import parse_status
from tests.emulators.escpos_printer import PrinterEmulator
from tests.support.polling import until


@pytest.fixture
async def emulator() -> AsyncIterator[PrinterEmulator]:
    emu = PrinterEmulator()
    await emu.start()
    yield emu
    await emu.stop()


def printer_for(emu: PrinterEmulator, paper_mm: int = 80, **kw: object) -> EscposPrinter:
    config = NetworkPrinter(
        driver="network",
        host="127.0.0.1",
        port=emu.port,
        paper_mm=paper_mm,  # type: ignore[arg-type]
        status_timeout_s=0.3,
        job_timeout_s=0.5,
        **kw,  # type: ignore[arg-type]
    )
    printer = build_printer(config, data_dir=None)  # type: ignore[arg-type]
    assert isinstance(printer, EscposPrinter)
    return printer


def printed_columns(line: str) -> int:
    """In Chinese mode a printer prints single-byte characters narrow, multi-byte ones wide."""
    return sum(1 if len(ch.encode("gb18030")) == 1 else 2 for ch in line)


RECEIPT = PrintDocument(
    blocks=[
        Text(text="鲜果便利店 Fresh Mart", align="center", bold=True, large=True),
        Columns(left="苹果 Apple x2", right="¥7.00"),
        Columns(left="牛奶 Milk", right="¥12.50"),
        Rule(),
        Columns(left="合计 Total", right="¥19.50"),
        Text(text="取货码 A-0931\uff0c谢谢惠顾"),
        QrCode(data="ORD-20240521-0931", size=6),
    ],
    cut=True,
    open_drawer=True,
)


async def test_chinese_receipt_prints_as_gb18030_with_qr_cut_and_drawer(
    emulator: PrinterEmulator,
) -> None:
    printer = printer_for(emulator)
    await printer.print(RECEIPT)
    (receipt,) = emulator.receipts()
    assert receipt.unknown == []
    assert "鲜果便利店 Fresh Mart" in receipt.lines
    assert any(
        line.startswith("苹果 Apple x2") and line.endswith("¥7.00") for line in receipt.lines
    )
    assert "取货码 A-0931\uff0c谢谢惠顾" in receipt.lines
    assert max(printed_columns(line) for line in receipt.lines) <= 48
    assert receipt.qr == ["ORD-20240521-0931"] and receipt.cut and receipt.drawer_kicks == 1
    assert "苹果".encode("gb18030") in bytes(emulator.printed)  # GB18030, not UTF-8
    await printer.close()


def test_receipt_qr_payload_decodes_back_to_the_order_reference() -> None:
    """The emulator reports the stored QR payload; render what a printer would print and read it
    back with the camera decoder, so the order reference survives the full trip."""
    (payload,) = [b.data for b in RECEIPT.blocks if isinstance(b, QrCode)]
    image = qrcode.make(payload.encode("utf-8"), box_size=6).get_image().convert("L")
    frame = np.asarray(image, dtype=np.uint8)
    assert make_decoder("zxing").decode(frame) == ["ORD-20240521-0931"]
    assert make_decoder("pyzbar").decode(frame) == ["ORD-20240521-0931"]


async def test_58mm_paper_fits_32_columns(emulator: PrinterEmulator) -> None:
    printer = printer_for(emulator, paper_mm=58)
    await printer.print(PrintDocument(blocks=[Rule(), Columns(left="商品" * 20, right="1.00")]))
    lines = emulator.receipts()[0].lines
    assert lines[0] == "-" * 32
    assert lines[1].endswith("1.00") and printed_columns(lines[1]) == 32
    await printer.close()


@pytest.mark.parametrize(
    ("script", "problem"),
    [
        ({"paper_out": True}, "printer out of paper"),
        ({"cover_open": True}, "printer cover open"),
    ],
)
async def test_not_ready_printer_refuses_before_sending(
    emulator: PrinterEmulator, script: dict[str, bool], problem: str
) -> None:
    for key, value in script.items():
        setattr(emulator, key, value)
    printer = printer_for(emulator)
    with pytest.raises(PrinterNotReady) as info:
        await printer.print(RECEIPT)
    assert str(info.value) == problem
    assert printer.status().detail == problem and not printer.status().ok
    assert emulator.printed == b""


async def test_paper_near_end_still_prints_and_is_reported(emulator: PrinterEmulator) -> None:
    emulator.paper_near_end = True
    printer = printer_for(emulator)
    await printer.print(RECEIPT)
    assert len(emulator.receipts()) == 1
    state = await printer.paper_state()
    assert state.ready and state.paper_near_end
    assert printer.status().ok and printer.status().detail == "paper near end"
    await printer.close()


async def test_silent_printer_is_an_error_not_paper_adequate(emulator: PrinterEmulator) -> None:
    emulator.silent = True
    printer = printer_for(emulator)
    with pytest.raises(DeviceError, match="does not answer status"):
        await printer.paper_state()
    with pytest.raises(DeviceError):
        await printer.print(RECEIPT)
    assert emulator.printed == b"" and not printer.status().ok
    await printer.close()


async def print_queue_worker(printer: EscposPrinter, jobs: list[PrintDocument]) -> list[str]:
    """What the durable print queue does with the contract: a job leaves the queue only when
    print() returned; PrinterNotReady means wait for the printer and try again."""
    log = []
    while jobs:
        try:
            await printer.print(jobs[0])
        except PrinterNotReady as exc:
            log.append(f"waiting: {exc}")
            # A printer reports paper only when asked: polling is the only way.
            while not (await printer.paper_state()).ready:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            continue
        jobs.pop(0)
        log.append("printed")
    return log


async def test_paper_out_mid_receipt_keeps_job_and_prints_it_once_when_paper_returns(
    emulator: PrinterEmulator,
) -> None:
    printer = printer_for(emulator)
    emulator.run_out_after(120)  # the roll ends part way through the receipt
    jobs = [RECEIPT]
    worker = asyncio.create_task(print_queue_worker(printer, jobs))
    await until(lambda: printer.status().detail == "printer out of paper")
    assert not worker.done() and jobs == [RECEIPT]  # still queued, waiting for paper
    assert printer.status().detail == "printer out of paper"  # what health/display show
    emulator.load_paper()
    log = await asyncio.wait_for(worker, 3)
    assert log == ["waiting: printer out of paper", "printed"]
    receipts = emulator.receipts()
    complete = [r for r in receipts if r.cut]
    assert len(complete) == 1  # the stub from the empty roll was not finished by itself
    assert len(receipts) == 2 and not receipts[0].cut and receipts[0].qr == []
    assert complete[0].qr == ["ORD-20240521-0931"] and complete[0].drawer_kicks == 1
    await printer.close()


async def test_cover_opened_mid_receipt_is_retried(emulator: PrinterEmulator) -> None:
    printer = printer_for(emulator)
    await printer.print(RECEIPT)
    emulator.run_out_after(10**9)
    original = emulator._process

    def open_cover_midway(data: bytes) -> None:
        emulator.cover_open = True
        original(data)

    emulator._process = open_cover_midway  # type: ignore[method-assign]
    with pytest.raises(PrinterNotReady, match="cover open"):
        await printer.print(RECEIPT)
    assert len([r for r in emulator.receipts() if r.cut]) == 1
    await printer.close()


async def test_power_cycled_printer_is_reopened(emulator: PrinterEmulator) -> None:
    printer = printer_for(emulator)
    await printer.print(RECEIPT)
    await emulator.power_cycle()
    with pytest.raises(DeviceError):  # the old connection is dead
        await printer.print(RECEIPT)
    assert not printer.status().present
    await printer.print(RECEIPT)  # reopened
    assert printer.opened == 2 and emulator.connections == 2
    assert len([r for r in emulator.receipts() if r.cut]) == 2
    await printer.close()


async def test_unreachable_printer_is_a_device_error() -> None:
    emu = PrinterEmulator()
    port = await emu.start()
    await emu.stop()
    printer = printer_for(emu)
    assert port == emu.port
    with pytest.raises(DeviceError, match="cannot connect"):
        await printer.paper_state()
    assert "cannot reach printer" in printer.status().detail
    await printer.close()


def test_status_bytes_are_validated() -> None:
    assert parse_status(0x12, 0x12, 0x12) == PaperState()
    assert parse_status(0x1A, 0x32, 0x72) == PaperState(paper_out=True)
    assert parse_status(0x1A, 0x16, 0x12) == PaperState(cover_open=True)
    assert parse_status(0x1A, 0x52, 0x12) == PaperState(online=False)
    assert parse_status(0x12, 0x12, 0x1E) == PaperState(paper_near_end=True)
    with pytest.raises(ValueError, match="not a DLE EOT 2 answer"):
        parse_status(0x12, 0x00, 0x12)
