"""Downlink: verify every message, then apply it exactly once, inside the inbox transaction.

The pipeline, cheapest check first, every failure a counted and logged reason, never a
crash and never an effect:

1. `oversized`    - more bytes than `link.max_downlink_bytes`;
2. `misaddressed` - the topic is not one of this device's downlink topics, or the
   envelope's `device` is not this device's audience for that topic (see `audience`);
3. `malformed`    - not a valid envelope (the one codec in `edged.contract.envelope`);
4. `unsigned` / `forged` - no signature, or one no trusted Ed25519 key made;
5. `no_expiry` / `expired` - see "Expiry and the unsynced clock" below;
6. `replayed`     - the id is already in the inbox;
7. `no_handler`   - nothing registered for this kind (yet);
then one transaction: `Inbox.claim` plus the registered handler's effect. The claim is
deferred onto the transaction's first hop to the writer thread, so a handler that does its
work with `Transaction.defer` makes the whole message cost one hop; a replay found there
raises before the handler's own work in that hop runs. A handler that raises
`HandlerRejected` (`handler_rejected`) or anything else (`handler_error`) rolls the whole
transaction back, the id included.

One message never ends the link: anything else raised while checking or applying it is
`internal_error` (logged with its traceback, counted, acknowledged like every rejection).
Only the store itself failing (`StoreUnavailable`: disk full, I/O error, locked) is not the
message's fault: the link keeps that message unacknowledged and tries it again later.

Expiry and the unsynced clock: a Pi boots with a wrong wall clock until NTP syncs. When
the clock is synced a message is expired once `now > exp + max_clock_skew_s`. When it is
not, the local clock proves nothing, so the check uses a floor instead: the newest `ts`
of any message that passed the signature check this boot (the backend signed that time,
so the true time is at least that). A message whose `exp` lies more than the skew below
that floor is expired. Before any signed message has arrived an unsynced device cannot
judge expiry at all and relies on signature plus replay protection; it says so in the log.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edged.contract.envelope import Envelope, EnvelopeError, decode_envelope, parse_rfc3339
from edged.contract.signing import SignatureError, verify_envelope
from edged.contract.topics import (
    SIGNED_DOWNLINK,
    DeviceTopics,
    Downlink,
    DownlinkAddress,
    scope_audience,
)
from edged.runtime.clock import Clock
from edged.store.database import Statements, Store, Transaction
from edged.store.inbox import Inbox
from edged.store.outbox import ResponseRoute

log = logging.getLogger("edged.link.downlink")


@dataclass(frozen=True)
class DownlinkDelivery(DownlinkAddress):
    """Where a downlink came from; a `DownlinkAddress` plus what a reply needs.

    `response_topic` and `correlation_data` are the MQTT 5 request properties (None on
    3.1.1); `reply_route` turns them into an outbox response route.
    """

    topic: str = ""
    response_topic: str | None = None
    correlation_data: bytes | None = None
    retained: bool = False
    reply_root: str = ""
    """`<device root>/rsp/`: the only place the broker's ACL lets this device reply."""

    def reply_route(self, request_id: str) -> ResponseRoute:
        """Where the reply to this request goes, for `Outbox.add(..., response=...)`.

        The MQTT 5 response topic when the request named one this device may publish to,
        else `rsp/{request_id}`; the correlation data is echoed either way (3.1.1 has none).
        """
        wanted = self.response_topic or ""
        usable = (
            wanted.startswith(self.reply_root)
            and len(wanted) > len(self.reply_root)
            and not any(c in wanted for c in "+#\0")
        )
        topic = wanted if usable else f"{self.reply_root}{request_id}"
        return ResponseRoute(topic, self.correlation_data)


Handler = Callable[[Envelope, Transaction, DownlinkDelivery], Awaitable[None]]
"""Runs inside the inbox transaction: its writes commit together with the claimed id.

It has effects only through the transaction (its `Statements.after` callbacks included): the
id's claim runs in the first hop, so a replay can get as far as the handler's own code.
"""


class StoreUnavailable(Exception):
    """The store could not take the message's transaction; try the same message later."""

    def __init__(self, cause: sqlite3.Error) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


def store_fault(exc: BaseException) -> bool:
    """An error of the store itself (full, I/O, locked: OperationalError; corrupt: a bare
    DatabaseError), not of a message's content: a constraint a handler's write breaks
    (IntegrityError, DataError, ...) is that message's rejection."""
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


class DownlinkRejected(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.envelope: Envelope | None = None
        """The decoded envelope, when the message got that far (for `RefusalHandler`s)."""
        self.address: DownlinkAddress | None = None


RefusalHandler = Callable[
    [Envelope, "DownlinkRejected", Transaction, "DownlinkDelivery"], Awaitable[None]
]
"""Told of a refused message that decoded as an envelope (unsigned, forged, expired, replayed,
rejected by the handler), in a transaction of its own, so its kind can answer the sender
(an operations command's `rejected` or `timed_out` reply). It must check for itself whether
the envelope is authentic before it trusts anything in it; it can never undo the refusal."""


class DownlinkRegistry(Protocol):
    """What a service sees of the router while it starts: where to hand its commands."""

    def register(
        self, kind: Downlink, handler: Handler, *, on_refused: RefusalHandler | None = None
    ) -> None: ...

    def register_type(self, kind: Downlink, type_name: str, handler: Handler) -> None: ...


class HandlerRejected(Exception):
    """Raised by a handler for content it will not apply; the transaction rolls back."""


def audience(topics: DeviceTopics, address: DownlinkAddress) -> str:
    """The `device` field an envelope must carry on this topic (see `scope_audience`)."""
    return scope_audience(address.scope, topics.site, topics.device)


class DownlinkVerifier:
    """Checks 1-5 of the pipeline: everything that needs no database."""

    def __init__(
        self,
        topics: DeviceTopics,
        trusted_keys: Iterable[Ed25519PublicKey],
        clock: Clock,
        *,
        max_bytes: int,
        max_clock_skew_s: float,
    ) -> None:
        self._topics = topics
        self._trusted = list(trusted_keys)
        self._clock = clock
        self._max_bytes = max_bytes
        self._skew = timedelta(seconds=max_clock_skew_s)
        self._signed_floor: datetime | None = None
        self._warned_unjudged = False

    def check(self, topic: str, payload: bytes) -> tuple[Envelope, DownlinkAddress]:
        if len(payload) > self._max_bytes:
            raise DownlinkRejected("oversized", f"{len(payload)} bytes > {self._max_bytes}")
        address = self._topics.classify(topic)
        if address is None:
            raise DownlinkRejected("misaddressed", "not a downlink topic of this device")
        try:
            envelope = decode_envelope(payload, self._max_bytes)
        except EnvelopeError as exc:
            raise DownlinkRejected("malformed", str(exc)) from None
        if envelope.device != audience(self._topics, address):
            raise DownlinkRejected("misaddressed", "envelope.device is not this device")
        if address.kind in SIGNED_DOWNLINK:
            try:
                self._check_signature(envelope)
                self._check_expiry(envelope)
            except DownlinkRejected as exc:
                exc.envelope, exc.address = envelope, address
                raise
        return envelope, address

    def _check_signature(self, envelope: Envelope) -> None:
        try:
            verify_envelope(envelope, self._trusted)
        except SignatureError as exc:
            reason = "unsigned" if envelope.sig is None else "forged"
            raise DownlinkRejected(reason, str(exc)) from None
        except Exception as exc:  # bytes no key could have signed
            raise DownlinkRejected("forged", f"unverifiable: {type(exc).__name__}") from None

    def _check_expiry(self, envelope: Envelope) -> None:
        expires = envelope.expires_at()
        if expires is None:
            raise DownlinkRejected("no_expiry", "signed downlink without exp")
        sent = parse_rfc3339(envelope.ts)
        if self._clock.synced():
            reference: datetime | None = self._clock.now()
        else:
            reference = self._signed_floor
            if reference is None and not self._warned_unjudged:
                self._warned_unjudged = True
                log.warning("clock unsynced: downlink expiry cannot be judged until NTP syncs")
        # `reference - skew`, not `exp + skew`: an exp near year 9999 must not overflow.
        if reference is not None and reference - self._skew > expires:
            raise DownlinkRejected("expired", f"exp {envelope.exp}")
        # Only a signed, unexpired message may raise the floor.
        if self._signed_floor is None or sent > self._signed_floor:
            self._signed_floor = sent


@dataclass
class DownlinkStats:
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    store_unavailable: int = 0
    """Times a message waited because the store could not take it (not a rejection)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "store_unavailable": self.store_unavailable,
        }


class DownlinkRouter:
    """Services register one handler per downlink kind; the link feeds it every message."""

    def __init__(
        self, topics: DeviceTopics, store: Store, inbox: Inbox, verifier: DownlinkVerifier
    ) -> None:
        self._reply_root = f"{topics.root}/rsp/"
        self._store = store
        self._inbox = inbox
        self._verifier = verifier
        self._handlers: dict[Downlink, Handler] = {}
        self._refusals: dict[Downlink, RefusalHandler] = {}
        self._typed: dict[Downlink, dict[str, Handler]] = {}
        """One dispatch table per topic, keyed by envelope type, filled by each handler's
        owner (e.g. `cmd/pay`: `pay.result` for payments, `refund.result` for refunds)."""
        self.stats = DownlinkStats()
        self.accepting = asyncio.Event()
        """Set by `ready()`; the link subscribes only then, so no message meets no handler."""

    def register(
        self, kind: Downlink, handler: Handler, *, on_refused: RefusalHandler | None = None
    ) -> None:
        """Route `kind` to `handler`, which runs inside the transaction that claims the id."""
        if kind in self._handlers:
            raise ValueError(f"a handler for {kind.value} is already registered")
        self._handlers[kind] = handler
        if on_refused is not None:
            self._refusals[kind] = on_refused

    def register_type(self, kind: Downlink, type_name: str, handler: Handler) -> None:
        """Route envelopes of `type_name` on `kind` to `handler`; other types on that topic
        go to the topic's own handler, if one is registered, else are refused."""
        table = self._typed.setdefault(kind, {})
        if type_name in table:
            raise ValueError(f"a handler for {type_name} on {kind.value} is already registered")
        table[type_name] = handler

    def ready(self) -> None:
        """Every service has registered: the link may subscribe to downlink topics now."""
        self.accepting.set()

    async def deliver(
        self,
        topic: str,
        payload: bytes,
        *,
        retained: bool = False,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
    ) -> str | None:
        """Verify and apply one message; returns None when applied, else the reason.

        Raises only `StoreUnavailable` (the store could not take the transaction: the
        message stays unacknowledged, to be tried again) or a store error that is no
        message's fault and no passing trouble (a corrupt database: the daemon's problem).
        """
        try:
            envelope, address = self._verifier.check(topic, payload)
            delivery = DownlinkDelivery(
                address.kind,
                address.scope,
                topic=topic,
                response_topic=response_topic,
                correlation_data=correlation_data,
                retained=retained,
                reply_root=self._reply_root,
            )
            await self._apply(envelope, delivery)
        except DownlinkRejected as exc:
            self._reject(topic, exc, retained)
            await self._tell_refused(exc, topic, retained, response_topic, correlation_data)
            return exc.reason
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(exc) from exc
        except Exception as exc:
            if store_fault(exc):
                raise  # a corrupt database: the daemon stops and says so at the next start
            log.exception("downlink check failed", extra={"topic": topic})
            internal = DownlinkRejected("internal_error", type(exc).__name__)
            self._reject(topic, internal, retained)
            return internal.reason
        self.stats.accepted += 1
        log.info(
            "downlink applied",
            extra={"topic": topic, "msg_id": envelope.id, "type": envelope.type},
        )
        return None

    async def _tell_refused(
        self,
        exc: DownlinkRejected,
        topic: str,
        retained: bool,
        response_topic: str | None,
        correlation_data: bytes | None,
    ) -> None:
        if exc.envelope is None or exc.address is None:
            return
        on_refused = self._refusals.get(exc.address.kind)
        if on_refused is None:
            return
        delivery = DownlinkDelivery(
            exc.address.kind,
            exc.address.scope,
            topic=topic,
            response_topic=response_topic,
            correlation_data=correlation_data,
            retained=retained,
            reply_root=self._reply_root,
        )
        envelope = exc.envelope
        try:
            async with self._store.transaction() as tx:
                await on_refused(envelope, exc, tx, delivery)
        except Exception as error:  # telling the sender must never become the message's crash
            if store_fault(error):
                log.warning("refusal not answered: store unavailable", extra={"topic": topic})
                return
            log.exception("refusal handler failed", extra={"msg_id": envelope.id})

    async def _apply(self, envelope: Envelope, delivery: DownlinkDelivery) -> None:
        try:
            await self._apply_checked(envelope, delivery)
        except DownlinkRejected as exc:
            exc.envelope, exc.address = envelope, delivery
            raise

    async def _apply_checked(self, envelope: Envelope, delivery: DownlinkDelivery) -> None:
        if await self._inbox.seen(envelope.id):
            raise DownlinkRejected("replayed", f"id {envelope.id} already applied")
        handler = self._handler_for(delivery.kind, envelope.type)
        try:
            async with self._store.transaction() as tx:
                # Deferred: the claim rides on the handler's first hop, or on the COMMIT.
                tx.defer(lambda s: self._claim_or_reject(s, envelope, delivery.topic))
                await handler(envelope, tx, delivery)
        except DownlinkRejected:
            raise
        except HandlerRejected as exc:
            raise DownlinkRejected("handler_rejected", str(exc)) from None
        except Exception as exc:
            if store_fault(exc):
                raise
            log.exception("downlink handler failed", extra={"msg_id": envelope.id})
            raise DownlinkRejected("handler_error", type(exc).__name__) from None

    def _handler_for(self, kind: Downlink, type_name: str) -> Handler:
        typed = self._typed.get(kind, {})
        handler = typed.get(type_name) or self._handlers.get(kind)
        if handler is not None:
            return handler
        if not typed:
            raise DownlinkRejected("no_handler", f"nothing handles {kind.value}")
        near = difflib.get_close_matches(type_name, list(typed), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise DownlinkRejected("no_handler", f"nothing handles {type_name!r} on {kind.value}{hint}")

    def _claim_or_reject(self, s: Statements, envelope: Envelope, topic: str) -> None:
        if not self._inbox.claim_now(s, envelope, topic):
            raise DownlinkRejected("replayed", f"id {envelope.id} already applied")

    def _reject(self, topic: str, exc: DownlinkRejected, retained: bool) -> None:
        self.stats.rejected[exc.reason] += 1
        # A retained message comes again after each reconnect; its replay is expected.
        level = logging.INFO if retained and exc.reason == "replayed" else logging.WARNING
        log.log(
            level,
            "downlink rejected",
            extra={"topic": topic, "reason": exc.reason, "detail": exc.detail},
        )
