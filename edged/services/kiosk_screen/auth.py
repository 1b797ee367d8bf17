"""The technician's token and sessions: constant-time compare, back-off, HttpOnly cookies.

A wrong token doubles the wait before the next try is even looked at (0.5 s, 1 s, 2 s, ...
up to 60 s), so guessing over the network is hopeless; the right token resets it. A session
is a random cookie value the browser keeps HttpOnly and SameSite=Strict: page scripts cannot
read it and no other site's page can send it.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

from edged.runtime.backoff import Backoff
from edged.runtime.clock import Clock

COOKIE = "edged_tech"
SESSION_S = 8 * 3600.0


@dataclass(frozen=True)
class LoginOutcome:
    session: str | None = None
    retry_after_s: float = 0.0
    """Set when the gate refused to look: wait this long first."""


@dataclass
class TechnicianGate:
    token: str
    clock: Clock
    backoff: Backoff = field(default_factory=lambda: Backoff(0.5, 60.0, jitter=False))
    _sessions: dict[str, float] = field(default_factory=dict)
    _locked_until: float = 0.0

    def login(self, offered: str) -> LoginOutcome:
        now = self.clock.monotonic()
        if now < self._locked_until:
            return LoginOutcome(retry_after_s=self._locked_until - now)
        if not hmac.compare_digest(offered.encode(), self.token.encode()):
            self._locked_until = now + self.backoff.next_delay()
            return LoginOutcome()
        self.backoff.reset()
        self._drop_expired(now)
        session = secrets.token_urlsafe(32)
        self._sessions[session] = now + SESSION_S
        return LoginOutcome(session=session)

    def valid(self, session: str | None) -> bool:
        if not session:
            return False
        now = self.clock.monotonic()
        for known, expires in list(self._sessions.items()):
            # Compare against every live session in constant time, never by dict lookup.
            if hmac.compare_digest(known.encode(), session.encode()) and expires > now:
                return True
        return False

    def logout(self, session: str | None) -> None:
        if session:
            self._sessions.pop(session, None)

    def _drop_expired(self, now: float) -> None:
        for known, expires in list(self._sessions.items()):
            if expires <= now:
                del self._sessions[known]
