"""The durable print queue: a receipt is a row in `print_jobs` before it is paper.

A job is written in the same transaction as the sale it belongs to, so a paid sale always has
its receipt queued. The worker takes queued jobs in order, calls `printer.print()` and marks
the job printed only after that call returned (the printer accepted the whole document).

Out of paper, cover open, offline or a failed write: the job stays queued, the listener (the
checkout display) and `status()` say why, and the worker polls `paper_state()` with the one
Backoff helper until the printer is ready, then prints the job once.

Known window: a crash (power cut, SIGKILL) after `print()` returned but before the job was
marked printed reprints that one receipt after restart. Printing first and marking after is
the deliberate choice: a duplicate receipt is harmless, a paid sale without one is not.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from edged.runtime.backoff import Backoff
from edged.store import Statements, Store, Transaction
from hal.device import DeviceError
from hal.printer.document import PrintDocument, Text
from hal.printer.protocol import Printer, PrinterNotReady

log = logging.getLogger("edged.printing")

RECEIPT = "receipt"
REPRINT = "reprint"


@dataclass(frozen=True)
class PrintJob:
    id: int
    sale_id: str | None
    kind: str
    document: str


class PrintListener(Protocol):
    """Told about the queue's progress after each fact is committed."""

    async def job_printing(self, job: PrintJob) -> None: ...

    async def job_blocked(self, job: PrintJob, problem: str) -> None: ...

    async def job_printed(self, job: PrintJob) -> None: ...


class ReprintError(LookupError):
    """Nothing to reprint; the message says what was looked for."""


class PrintQueue:
    def __init__(
        self,
        store: Store,
        printer: Printer,
        *,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 10.0,
    ) -> None:
        self._store = store
        self._printer = printer
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._wakeup = asyncio.Event()
        self._listeners: list[PrintListener] = []
        self.problem = ""
        """Why the head of the queue is not printing, or empty."""

    def add_listener(self, listener: PrintListener) -> None:
        self._listeners.append(listener)

    async def enqueue(
        self, tx: Transaction, sale_id: str | None, kind: str, document: PrintDocument
    ) -> int:
        """Queue a job inside the caller's transaction; call `wake()` after it committed."""
        return await tx.run(lambda s: self.enqueue_now(s, sale_id, kind, document))

    def enqueue_now(
        self, s: Statements, sale_id: str | None, kind: str, document: PrintDocument
    ) -> int:
        """`enqueue` for work already running in the writer thread."""
        return s.insert(
            "INSERT INTO print_jobs (sale_id, kind, document, created_at) VALUES (?, ?, ?, ?)",
            (sale_id, kind, document.model_dump_json(), s.now),
        )

    def wake(self) -> None:
        self._wakeup.set()

    async def reprint(self, sale_id: str | None = None) -> int:
        """Queue a marked copy of a sale's receipt (default: the newest receipt)."""
        where, params = ("AND sale_id = ?", (sale_id,)) if sale_id else ("", ())
        async with self._store.transaction() as tx:
            row = await tx.fetchone(
                f"SELECT sale_id, document FROM print_jobs WHERE kind = ? {where} "
                "ORDER BY id DESC LIMIT 1",
                (RECEIPT, *params),
            )
            if row is None:
                wanted = f"sale {sale_id}" if sale_id else "any sale"
                raise ReprintError(f"no receipt to reprint for {wanted}")
            original = PrintDocument.model_validate_json(row["document"])
            copy = _mark_copy(original)
            job_id = await self.enqueue(tx, row["sale_id"], REPRINT, copy)
        self.wake()
        return job_id

    async def run(self) -> None:
        """The worker: supervised as a device task; queued jobs survive any restart."""
        while True:
            job = await self._next_job()
            if job is None:
                self._wakeup.clear()
                job = await self._next_job()
                if job is None:
                    await self._wakeup.wait()
                    continue
            await self._print(job)

    async def status(self) -> dict[str, Any]:
        row = await self._store.fetchone(
            "SELECT (SELECT COUNT(*) FROM print_jobs WHERE state = 'queued'), "
            "(SELECT COUNT(*) FROM print_jobs WHERE state = 'printed'), "
            "(SELECT COUNT(*) FROM print_jobs WHERE state = 'failed')"
        )
        assert row is not None
        return {"queued": row[0], "printed": row[1], "failed": row[2], "problem": self.problem}

    async def _next_job(self) -> PrintJob | None:
        row = await self._store.fetchone(
            "SELECT id, sale_id, kind, document FROM print_jobs WHERE state = 'queued' "
            "ORDER BY id LIMIT 1"
        )
        if row is None:
            return None
        return PrintJob(int(row["id"]), row["sale_id"], row["kind"], row["document"])

    async def _print(self, job: PrintJob) -> None:
        try:
            document = PrintDocument.model_validate_json(job.document)
        except ValidationError as exc:
            await self._finish(job, "failed", f"unreadable document: {exc.error_count()} errors")
            log.error("print job unreadable; skipped", extra={"job": job.id})
            return
        backoff = Backoff(self._retry_initial_s, self._retry_max_s)
        for listener in self._listeners:
            await listener.job_printing(job)
        while True:
            try:
                await self._printer.print(document)
                break
            except PrinterNotReady as exc:
                problem = str(exc)
            except DeviceError as exc:
                problem = f"printer error: {exc}"
            await self._blocked(job, problem)
            await self._wait_until_ready(backoff)
        await self._finish(job, "printed", None)
        self.problem = ""
        log.info("printed", extra={"job": job.id, "kind": job.kind, "sale": job.sale_id})
        for listener in self._listeners:
            await listener.job_printed(job)

    async def _blocked(self, job: PrintJob, problem: str) -> None:
        async with self._store.transaction() as tx:
            await tx.execute(
                "UPDATE print_jobs SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                (problem, job.id),
            )
        if problem != self.problem:
            log.warning("print job waiting", extra={"job": job.id, "reason": problem})
        self.problem = problem
        for listener in self._listeners:
            await listener.job_blocked(job, problem)

    async def _wait_until_ready(self, backoff: Backoff) -> None:
        while True:
            await asyncio.sleep(backoff.next_delay())
            try:
                state = await self._printer.paper_state()
            except DeviceError as exc:
                self.problem = f"printer error: {exc}"
                continue
            if state.ready:
                return
            self.problem = state.problem() or self.problem

    async def _finish(self, job: PrintJob, state: str, error: str | None) -> None:
        async with self._store.transaction() as tx:
            await tx.execute(
                "UPDATE print_jobs SET state = ?, attempts = attempts + 1, "
                "last_error = COALESCE(?, last_error), printed_at = ? WHERE id = ?",
                (state, error, tx.now if state == "printed" else None, job.id),
            )


def _mark_copy(document: PrintDocument) -> PrintDocument:
    marker = Text(text="** 重印 COPY **", align="center", bold=True)
    blocks = list(document.blocks)
    return document.model_copy(update={"blocks": [*blocks[:1], marker, *blocks[1:]]})
