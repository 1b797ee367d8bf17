"""The durable print queue: a receipt is a row in `print_jobs` before it is paper.

A job is written in the same transaction as the sale it belongs to, so a paid sale always has
its receipt queued. A job carries its document, or none when a renderer for its kind lays it
out at print time from committed facts (a receipt from its sale: that keeps the layout work
out of the sale's durable commit). The worker takes queued jobs in order, calls
`printer.print()` and marks the job printed only after that call returned (the printer
accepted the whole document).

Out of paper, cover open, offline or a failed write: the job stays queued, the listener (the
checkout display) and `status()` say why, and the worker polls `paper_state()` with the one
Backoff helper until the printer is ready, then prints the job once.

Known window: a crash (power cut, SIGKILL) after `print()` returned but before the job was
marked printed reprints that one receipt after restart. Printing first and marking after is
the deliberate choice: a duplicate receipt is harmless, a paid sale without one is not; and
so that a duplicate can never pass for a second sale, a job a previous run began printing
(`attempts` > 0 when this run picks it up; the count is committed before each run's first
`print()`) prints with the reprint mark (重印 COPY).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from edged.runtime.backoff import Backoff
from edged.store import Statements, Store, StoreUnwritable, Transaction
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
    document: str | None
    """The document as JSON, or None: the renderer for `kind` lays it out when it prints."""
    attempts: int = 0
    """Print attempts begun (or blocked) so far, in this run or an earlier one."""


class UnprintableJob(Exception):
    """A job that can never print (unreadable document, no such sale); it is marked failed."""


class DocumentRenderer(Protocol):
    """Lays out a job queued without a document, from facts already committed."""

    async def render(self, job: PrintJob) -> PrintDocument:
        """Raise UnprintableJob when the facts are not there; anything else is retried."""
        ...


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
        self._renderers: dict[str, DocumentRenderer] = {}
        self.problem = ""
        """Why the head of the queue is not printing, or empty."""

    def add_listener(self, listener: PrintListener) -> None:
        self._listeners.append(listener)

    def add_renderer(self, kind: str, renderer: DocumentRenderer) -> None:
        self._renderers[kind] = renderer

    async def enqueue(
        self, tx: Transaction, sale_id: str | None, kind: str, document: PrintDocument | None
    ) -> int:
        """Queue a job inside the caller's transaction; call `wake()` after it committed."""
        return await tx.run(lambda s: self.enqueue_now(s, sale_id, kind, document))

    def enqueue_now(
        self, s: Statements, sale_id: str | None, kind: str, document: PrintDocument | None
    ) -> int:
        """`enqueue` for work already running in the writer thread. With no document, the
        renderer added for `kind` lays the job out when it prints."""
        if document is None and (sale_id is None or kind not in self._renderers):
            raise ValueError(f"a {kind} job without a document needs a sale and a renderer")
        return s.insert(
            "INSERT INTO print_jobs (sale_id, kind, document, created_at) VALUES (?, ?, ?, ?)",
            (sale_id, kind, document.model_dump_json() if document else None, s.now),
        )

    def wake(self) -> None:
        self._wakeup.set()

    async def reprint(self, sale_id: str | None = None) -> int:
        """Queue a marked copy of a sale's receipt (default: the newest receipt)."""
        where, params = ("AND sale_id = ?", (sale_id,)) if sale_id else ("", ())
        row = await self._store.fetchone(
            f"SELECT id, sale_id, kind, document, attempts FROM print_jobs WHERE kind = ? {where} "
            "ORDER BY id DESC LIMIT 1",
            (RECEIPT, *params),
        )
        wanted = f"sale {sale_id}" if sale_id else "any sale"
        if row is None:
            raise ReprintError(f"no receipt to reprint for {wanted}")
        try:
            original = await self._document(_job(row))
        except UnprintableJob as exc:
            raise ReprintError(f"the receipt for {wanted} cannot be printed: {exc}") from None
        async with self._store.transaction() as tx:
            job_id = await self.enqueue(tx, row["sale_id"], REPRINT, _mark_copy(original))
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
            "SELECT id, sale_id, kind, document, attempts FROM print_jobs "
            "WHERE state = 'queued' ORDER BY id LIMIT 1"
        )
        return None if row is None else _job(row)

    async def _document(self, job: PrintJob) -> PrintDocument:
        if job.document is not None:
            try:
                return PrintDocument.model_validate_json(job.document)
            except ValidationError as exc:
                raise UnprintableJob(f"unreadable document: {exc.error_count()} errors") from None
        renderer = self._renderers.get(job.kind)
        if renderer is None:
            raise UnprintableJob(f"nothing lays out {job.kind} jobs")
        return await renderer.render(job)

    async def _print(self, job: PrintJob) -> None:
        try:
            document = await self._document(job)
        except UnprintableJob as exc:
            await self._finish(job, "failed", str(exc))
            log.error("print job cannot print; skipped", extra={"job": job.id, "why": str(exc)})
            return
        if job.attempts > 0 and job.kind != REPRINT:
            # An earlier run began this job and may have printed it: say so on the paper.
            document = _mark_copy(document)
            log.warning(
                "print job resumed after a restart: marked as a copy", extra={"job": job.id}
            )
        await self._begin(job)
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

    async def _begin(self, job: PrintJob) -> None:
        """Commit that a print is begun, so a crash before the mark shows on the next run."""
        with contextlib.suppress(StoreUnwritable):  # a full disk must not stop the receipt
            async with self._store.transaction() as tx:
                await tx.execute(
                    "UPDATE print_jobs SET attempts = attempts + 1 WHERE id = ?", (job.id,)
                )

    async def _blocked(self, job: PrintJob, problem: str) -> None:
        with contextlib.suppress(StoreUnwritable):  # the count is bookkeeping, not a fact
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
        """Mark the job; a disk too full to take the mark is waited out here, never a
        reason to print the job again."""
        backoff = Backoff(self._retry_initial_s, self._retry_max_s)
        while True:
            try:
                async with self._store.transaction() as tx:
                    await tx.execute(
                        "UPDATE print_jobs SET state = ?, attempts = attempts + 1, "
                        "last_error = COALESCE(?, last_error), printed_at = ? WHERE id = ?",
                        (state, error, tx.now if state == "printed" else None, job.id),
                    )
                return
            except StoreUnwritable as exc:
                delay = backoff.next_delay()
                log.warning(
                    "print job mark waits for the store",
                    extra={"job": job.id, "reason": exc.reason, "retry_in_s": round(delay, 2)},
                )
                await asyncio.sleep(delay)


def _job(row: Any) -> PrintJob:
    return PrintJob(
        int(row["id"]), row["sale_id"], row["kind"], row["document"], int(row["attempts"])
    )


def _mark_copy(document: PrintDocument) -> PrintDocument:
    marker = Text(text="** 重印 COPY **", align="center", bold=True)
    blocks = list(document.blocks)
    return document.model_copy(update={"blocks": [*blocks[:1], marker, *blocks[1:]]})
