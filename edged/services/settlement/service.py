"""The daily settlement (日结) and its reconciliation with the backend.

At the business-day cut-over (or on `edged report day`) one transaction computes the day's
figures from the `evt/txn` journal, records the settlement (a new revision each time the day
is reported again) and queues `report.settlement` on evt/report, its envelope signed by the
device's own identity key. The backend answers with its own figures (`recon.figures` on
cmd/recon), applied inside the inbox transaction: equal figures make the day `reconciled`;
otherwise the differing transactions are resent by txn sequence range and the day reported
again, until it reconciles or `recon_rounds` are used up and it is left `mismatch` with the
list of differences. Every step is reported on evt/report (`report.recon`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, NoReturn

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edged.config.models import Settlement as SettlementConfig
from edged.contract.bodies import (
    BodyError,
    ReconFigures,
    ReconReport,
    SettlementReport,
    dump_body,
    envelope_body,
)
from edged.contract.envelope import Envelope, parse_rfc3339, rfc3339
from edged.contract.signing import sign_envelope
from edged.contract.topics import Uplink
from edged.link.downlink import HandlerRejected
from edged.services.printing.queue import PrintQueue
from edged.services.settlement.day import (
    business_day,
    day_bounds,
    next_cutover,
    parse_cutover,
    shop_zone,
)
from edged.services.settlement.figures import JOURNAL_OF_DAY_SQL, digest, figures, journal_txn
from edged.services.settlement.identity import identity_public_b64
from edged.services.settlement.recon import classify, ranges
from edged.services.settlement.zreport import Z_REPORT, z_report_document
from edged.store import Statements, Store, Transaction
from edged.store.outbox import Outbox

log = logging.getLogger("edged.settlement")

RECON_TYPE = "recon.figures"
LOOK_AGAIN_S = 60.0
"""The wall clock may jump (NTP, a moved clock): the scheduler looks again at least this often."""


class SettlementService:
    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        config: SettlementConfig,
        identity: Ed25519PrivateKey,
        printing: PrintQueue,
        shop_name: str,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._config = config
        self._identity = identity
        self._public = identity_public_b64(identity)
        self._printing = printing
        self._shop_name = shop_name
        self._zone = shop_zone(config.timezone)
        self._zone_name = config.timezone or str(self._zone)
        self._cutover = parse_cutover(config.cutover)
        self.recon_applied: Counter[str] = Counter()

    @property
    def public_key(self) -> str:
        return self._public

    @property
    def zone(self) -> tzinfo:
        return self._zone

    @property
    def cutover(self) -> time:
        return self._cutover

    def day_of(self, moment: datetime) -> date:
        return business_day(moment, self._zone, self._cutover)

    # -- settling ------------------------------------------------------------------------

    async def report_day(
        self, day: date | None = None, *, print_it: bool = False
    ) -> dict[str, Any]:
        """Commit (a new revision of) the day's settlement and queue it signed on evt/report."""
        chosen = day or self.day_of(self._store.clock.now())
        async with self._store.transaction() as tx:
            body = await tx.run(lambda s: self._report_now(s, chosen, print_it=print_it))
        if print_it:
            self._printing.wake()  # committed now: the worker can read the job
        log.info(
            "settlement reported",
            extra={
                "business_day": body["business_day"],
                "revision": body["revision"],
                "txn_count": body["txn_count"],
                "net_fen": body["net_fen"],
            },
        )
        return body

    def _report_now(
        self, s: Statements, day: date, *, print_it: bool = False, recon_round: int | None = None
    ) -> dict[str, Any]:
        start, end = day_bounds(day, self._zone, self._cutover)
        rows = s.fetchall(JOURNAL_OF_DAY_SQL, (rfc3339(start), rfc3339(end)))
        previous = s.fetchone(
            "SELECT revision FROM settlements WHERE business_day = ?", (day.isoformat(),)
        )
        revision = int(previous["revision"]) + 1 if previous else 1
        report = SettlementReport.model_validate(
            {
                "business_day": day.isoformat(),
                "revision": revision,
                "timezone": self._zone_name,
                "cutover": self._config.cutover,
                **figures([journal_txn(r) for r in rows]),
                "identity_key": self._public,
            }
        )
        body = dump_body(report)
        sent = self._outbox.write(s, Uplink.REPORT, "report.settlement", body, sign=self._sign)
        state = "pending" if recon_round is None else "resending"
        s.execute(
            "INSERT INTO settlements (business_day, revision, body, msg_id, created_at, "
            "recon_state, recon_round, recon_detail) VALUES (?, ?, ?, ?, ?, ?, ?, '[]') "
            "ON CONFLICT (business_day) DO UPDATE SET revision = excluded.revision, "
            "body = excluded.body, msg_id = excluded.msg_id, created_at = excluded.created_at, "
            "recon_state = excluded.recon_state, recon_round = excluded.recon_round"
            + ("" if recon_round is not None else ", recon_detail = '[]'"),
            (day.isoformat(), revision, json.dumps(body), sent.id, s.now, state, recon_round or 0),
        )
        if print_it:
            document = z_report_document(self._shop_name, body, parse_rfc3339(s.now))
            self._printing.enqueue_now(s, None, Z_REPORT, document)
        return {**body, "msg_id": sent.id}

    def _sign(self, envelope: Envelope) -> Envelope:
        return sign_envelope(envelope, self._identity)

    async def run(self) -> None:
        """Settle each business day at its cut-over; a day missed (kiosk off) at start."""
        while True:
            await self.settle_due()
            now = self._store.clock.now()
            wait = (next_cutover(now, self._zone, self._cutover) - now).total_seconds()
            await asyncio.sleep(min(LOOK_AGAIN_S, max(0.05, wait)))

    async def settle_due(self) -> None:
        """The business day before today, if it has transactions and no settlement yet."""
        yesterday = self.day_of(self._store.clock.now()) - timedelta(days=1)
        start, end = day_bounds(yesterday, self._zone, self._cutover)
        row = await self._store.fetchone(
            "SELECT (SELECT COUNT(*) FROM settlements WHERE business_day = ?), "
            "(SELECT COUNT(*) FROM txn_journal WHERE at >= ? AND at < ?)",
            (yesterday.isoformat(), rfc3339(start), rfc3339(end)),
        )
        if row is not None and row[0] == 0 and row[1] > 0:
            await self.report_day(yesterday, print_it=False)

    # -- reconciliation ----------------------------------------------------------------

    async def handle_recon(self, envelope: Envelope, tx: Transaction, address: Any) -> None:
        """A verified `recon.figures` inside the inbox transaction."""
        try:
            answer = envelope_body(envelope, RECON_TYPE, ReconFigures)
        except BodyError as exc:
            self._reject(envelope, str(exc))

        def apply(s: Statements) -> None:
            row = s.fetchone(
                "SELECT revision, recon_state, recon_round FROM settlements WHERE business_day = ?",
                (answer.business_day,),
            )
            if row is None:
                self._reject(envelope, "no settlement for that business day")
            if answer.revision != row["revision"] or row["recon_state"] in (
                "reconciled",
                "mismatch",
            ):
                s.after.append(lambda: self.recon_applied.update(stale=1))
                return
            self._reconcile_now(s, answer, int(row["recon_round"]))

        tx.defer(apply)

    def _reconcile_now(self, s: Statements, answer: ReconFigures, done_rounds: int) -> None:
        day = date.fromisoformat(answer.business_day)
        start, end = day_bounds(day, self._zone, self._cutover)
        local = [
            journal_txn(r) for r in s.fetchall(JOURNAL_OF_DAY_SQL, (rfc3339(start), rfc3339(end)))
        ]
        mine = figures(local)
        differences = classify(local, answer.txns)
        same = (
            not differences
            and answer.digest == digest(t.msg_id for t in local)
            and answer.txn_count == mine["txn_count"]
            and answer.sales_fen == mine["sales"]["total_fen"]
            and answer.refunds_fen == mine["refunds"]["total_fen"]
        )
        round_no = done_rounds + 1
        fixable = [d.txn_seq for d in differences if d.txn_seq is not None]
        resent: list[tuple[int, int]] = []
        if same:
            state = "reconciled"
        elif fixable and done_rounds < self._config.recon_rounds:
            state = "resending"
            resent = ranges(fixable)
            for first, last in resent:
                self._outbox.resend_txns(s, first, last)
        else:
            state = "mismatch"
        report = ReconReport.model_validate(
            {
                "business_day": answer.business_day,
                "state": state,
                "round": round_no,
                "differences": [d.as_dict() for d in differences],
                "resent_ranges": resent,
            }
        )
        self._outbox.write(s, Uplink.REPORT, "report.recon", dump_body(report))
        s.execute(
            "UPDATE settlements SET recon_state = ?, recon_round = ?, recon_detail = ? "
            "WHERE business_day = ?",
            (
                state,
                round_no,
                json.dumps([d.as_dict() for d in differences]),
                answer.business_day,
            ),
        )
        if state == "resending":
            self._report_now(s, day, recon_round=round_no)  # ask again with the same figures
        level = logging.ERROR if state == "mismatch" else logging.INFO
        extra = {"business_day": answer.business_day, "round": round_no, "found": len(differences)}

        def told() -> None:
            self.recon_applied[state] += 1
            log.log(level, "reconciliation " + state, extra=extra)

        s.after.append(told)

    def _reject(self, envelope: Envelope, reason: str) -> NoReturn:
        log.warning("recon figures rejected", extra={"reason": reason, "msg_id": envelope.id})
        raise HandlerRejected(reason)

    # -- status and exports -------------------------------------------------------------

    async def days(self, limit: int = 7) -> list[dict[str, Any]]:
        rows = await self._store.fetchall(
            "SELECT business_day, revision, body, recon_state, recon_round, recon_detail "
            "FROM settlements ORDER BY business_day DESC LIMIT ?",
            (limit,),
        )
        out = []
        for row in rows:
            body = json.loads(row["body"])
            out.append(
                {
                    "business_day": row["business_day"],
                    "revision": row["revision"],
                    "txn_count": body["txn_count"],
                    "net_fen": body["net_fen"],
                    "recon": row["recon_state"],
                    "recon_round": row["recon_round"],
                    "differences": json.loads(row["recon_detail"]),
                }
            )
        return out

    async def status(self) -> dict[str, Any]:
        return {
            "identity_key": self._public,
            "timezone": self._zone_name,
            "cutover": self._config.cutover,
            "today": self.day_of(self._store.clock.now()).isoformat(),
            "days": await self.days(),
        }
