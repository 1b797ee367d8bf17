"""ESC/POS status bytes, read and validated by us.

python-escpos 3.1 reports "paper adequate" when the printer answers nothing and has no notion
of a cover, so a receipt would be "printed" into a dead printer. Here every answer byte is
checked against the fixed bits the ESC/POS spec defines for it, and silence is an error.

DLE EOT n (real-time): the printer answers at once, even while it is stopped with data
waiting. GS r 1 (not real-time): answered only when the printer *reaches* it in its data,
i.e. after everything sent before it was printed; appended to a job it tells us the job
finished printing.
"""

from __future__ import annotations

from hal.printer.protocol import PaperState

DLE_EOT = b"\x10\x04"
QUERY_PRINTER = DLE_EOT + b"\x01"
QUERY_OFFLINE_CAUSE = DLE_EOT + b"\x02"
QUERY_PAPER = DLE_EOT + b"\x04"
QUERIES = (QUERY_PRINTER, QUERY_OFFLINE_CAUSE, QUERY_PAPER)
JOB_DONE_QUERY = b"\x1d\x72\x01"
"""GS r 1: transmit paper sensor status, processed in order after the job's data."""
CLEAR_BUFFERS = b"\x10\x14\x08\x01\x03\x14\x01\x06\x02\x08"
"""DLE DC4 8 (real-time): drop received-but-unprinted data, so a job stopped by paper-out does
not finish printing half a receipt by itself when paper is loaded; it is printed again whole."""

# DLE EOT n answers: bits 1 and 4 are always 1, bits 0 and 7 always 0.
_EOT_FIXED_MASK, _EOT_FIXED_VALUE = 0x93, 0x12
PRINTER_OFFLINE = 0x08
CAUSE_COVER_OPEN = 0x04
CAUSE_PAPER_END_STOP = 0x20
CAUSE_ERROR = 0x40
PAPER_NEAR_END = 0x0C
PAPER_END = 0x60
# GS r 1 answer: bits 4 and 7 are 0; bits 0-1 near end, bits 2-3 paper end.
_GSR_FIXED_MASK = 0x90
GSR_NEAR_END = 0x03
GSR_PAPER_END = 0x0C


def is_eot_answer(byte: int) -> bool:
    return byte & _EOT_FIXED_MASK == _EOT_FIXED_VALUE


def is_job_done_answer(byte: int) -> bool:
    return byte & _GSR_FIXED_MASK == 0


def parse_status(printer: int, cause: int, paper: int) -> PaperState:
    """Combine the answers to DLE EOT 1, 2 and 4.

    A printer out of paper or with its cover open also says "offline"; that is reported as
    the cause (what a technician must fix), and `online` stays False only for an offline
    printer with no cause we can name (an error, a fault).
    """
    for name, byte in (("1", printer), ("2", cause), ("4", paper)):
        if not is_eot_answer(byte):
            raise ValueError(f"not a DLE EOT {name} answer: 0x{byte:02x}")
    cover_open = bool(cause & CAUSE_COVER_OPEN)
    paper_out = bool(paper & PAPER_END) or bool(cause & CAUSE_PAPER_END_STOP)
    offline = bool(printer & PRINTER_OFFLINE) or bool(cause & CAUSE_ERROR)
    explained = cover_open or paper_out
    return PaperState(
        online=not (offline and not explained),
        paper_out=paper_out,
        paper_near_end=bool(paper & PAPER_NEAR_END),
        cover_open=cover_open,
    )
