"""A real ESC/POS receipt printer (USB, serial or TCP 9100).

The print queue marks a job printed once `print()` returns, so `print()` returns only when
the printer has *printed* it, and says why not otherwise:

1. Before sending, the status is read (DLE EOT 1, 2, 4). Paper out, cover open or an
   unexplained offline state raise PrinterNotReady and nothing is sent.
2. The job is sent followed by GS r 1, which the printer answers only after printing
   everything before it. That answer is the receipt's "done".
3. No answer within `job_timeout_s`: the real-time status is read again. If paper ran out or
   the cover was opened mid-receipt, the printer's buffer is cleared (so the half receipt is not
   completed by itself when paper is loaded) and PrinterNotReady is raised: the queue keeps the
   job and prints it again, whole, once the printer is ready. If the printer looks fine but never
   confirmed, DeviceError is raised, and the job is printed again too.

So a receipt is never lost; in the rare case where paper runs out exactly at its last line it
may come out twice. A failed connection (unplugged, power cycled) is closed and reopened on the
next call; python-escpos would keep writing into the dead handle.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from hal.device import DeviceError, DeviceKind, DeviceStatus
from hal.printer.document import PrintDocument
from hal.printer.escpos_lib import escpos_printers
from hal.printer.layout import COLUMNS_BY_PAPER_MM
from hal.printer.protocol import PaperState, PrinterNotReady
from hal.printer.render import render_escpos
from hal.printer.status import (
    CLEAR_BUFFERS,
    GSR_NEAR_END,
    JOB_DONE_QUERY,
    QUERIES,
    is_eot_answer,
    is_job_done_answer,
    parse_status,
)
from hal.printer.transport import Transport, TransportError

log = logging.getLogger(__name__)
T = TypeVar("T")


class NoAnswer(DeviceError):
    """The printer is connected but did not answer a status query."""


def render_job(document: PrintDocument, paper_mm: int, encoding: str) -> bytes:
    dummy = escpos_printers().Dummy()
    render_escpos(dummy, document, COLUMNS_BY_PAPER_MM[paper_mm], encoding)
    data: bytes = dummy.output
    return data


class EscposPrinter:
    def __init__(
        self,
        transport: Transport,
        driver: str,
        paper_mm: int = 80,
        encoding: str = "gb18030",
        status_timeout_s: float = 1.0,
        job_timeout_s: float = 20.0,
        confirm_jobs: bool = True,
    ) -> None:
        if paper_mm not in COLUMNS_BY_PAPER_MM:
            raise ValueError(f"paper width {paper_mm} mm is not supported (58 or 80)")
        self.transport = transport
        self.driver = driver
        self.paper_mm = paper_mm
        self.encoding = encoding
        self.status_timeout_s = status_timeout_s
        self.job_timeout_s = job_timeout_s
        self.confirm_jobs = confirm_jobs
        self._open = False
        self._state: PaperState | None = None
        self._detail = "not contacted yet"
        self.opened = 0
        self.printed = 0
        self.drawer_kicks = 0
        self._lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"printer-{driver}")

    # -- what the daemon sees ------------------------------------------------------------

    def status(self) -> DeviceStatus:
        state = self._state
        ok = self._open and state is not None and state.ready
        detail = self._detail
        if state is not None and state.ready and state.paper_near_end:
            detail = "paper near end"
        return DeviceStatus(
            DeviceKind.PRINTER, self.driver, present=self._open, ok=ok, detail=detail
        )

    async def paper_state(self) -> PaperState:
        return await self._call(self._query_state)

    async def print(self, document: PrintDocument) -> None:
        data = render_job(document, self.paper_mm, self.encoding)
        await self._call(lambda: self._print(data))
        self.printed += 1

    async def open_drawer(self) -> None:
        await self._call(lambda: self._guarded(self._kick_drawer))
        self.drawer_kicks += 1

    def _kick_drawer(self) -> None:
        from escpos.constants import CD_KICK_2  # drawer on pin 2, as python-escpos pulses it

        self.transport.write(CD_KICK_2)

    async def close(self) -> None:
        async with self._lock:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=False)

    async def _call(self, fn: Callable[[], T]) -> T:
        async with self._lock:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    # -- blocking side, in the worker thread ----------------------------------------------

    def _ensure_open(self) -> None:
        if self._open:
            return
        try:
            self.transport.open()
        except DeviceError as exc:
            self._detail = f"cannot reach printer: {exc}"
            raise
        self._open = True
        self.opened += 1
        log.info("printer %s opened", self.transport.description)

    def _close(self) -> None:
        self._open = False
        self.transport.close()

    def _failed(self, exc: DeviceError) -> None:
        """A transport failure: close now so the next call reopens (power cycle, re-plug)."""
        self._close()
        self._state = None
        self._detail = f"printer connection lost: {exc}"
        log.warning("printer %s: %s", self.transport.description, exc)

    def _guarded(self, fn: Callable[[], T]) -> T:
        self._ensure_open()
        try:
            return fn()
        except TransportError as exc:
            self._failed(exc)
            raise

    def _await_byte(self, accept: Callable[[int], bool], timeout_s: float) -> int | None:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            for byte in self.transport.read(left):
                if accept(byte):
                    return byte
        return None

    def _read_state(self) -> PaperState:
        self.transport.discard_input()
        answers = []
        for query in QUERIES:
            self.transport.write(query)
            byte = self._await_byte(is_eot_answer, self.status_timeout_s)
            if byte is None:
                self._state = PaperState(online=False)
                self._detail = f"printer does not answer status queries (DLE EOT {query[-1]})"
                raise NoAnswer(self._detail)
            answers.append(byte)
        state = parse_status(*answers)
        self._state = state
        self._detail = state.problem()
        return state

    def _query_state(self) -> PaperState:
        return self._guarded(self._read_state)

    def _print(self, data: bytes) -> None:
        self._guarded(lambda: self._print_open(data))

    def _print_open(self, data: bytes) -> None:
        state = self._read_state()
        if not state.ready:
            raise PrinterNotReady(state)
        if not self.confirm_jobs:
            self.transport.write(data)
            return
        self.transport.write(data + JOB_DONE_QUERY)
        done = self._await_byte(is_job_done_answer, self.job_timeout_s)
        if done is not None:
            if done & GSR_NEAR_END and self._state is not None:
                self._state = PaperState(paper_near_end=True)
            return
        # Not printed to the end: find out why while the printer is still stopped.
        state = self._read_state()
        if not state.ready:
            self.transport.write(CLEAR_BUFFERS)
            log.warning("receipt stopped part way: %s; it will be printed again", state.problem())
            raise PrinterNotReady(state)
        self._detail = "printer did not confirm the receipt"
        raise DeviceError(
            f"printer did not confirm the receipt within {self.job_timeout_s:g} s "
            "(if it cannot answer GS r, set confirm_jobs = false)"
        )
