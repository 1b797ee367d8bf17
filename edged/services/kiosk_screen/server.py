"""The pages' HTTP and WebSocket server, on the `websockets` package in the daemon's loop.

`websockets` answers plain GET requests through `process_request`, which is all these pages
need: the shipped assets, the technician login (the token travels in an Authorization
header, never in a URL) and two WebSockets. Every state change travels over a WebSocket whose
Origin must be this server's own, so another site's page cannot drive the kiosk; the
technician's socket also needs the session cookie.

Routes:
  GET /                 the shopper's page          GET /static/NAME  its assets
  GET /ws               the shopper's live feed and buttons
  GET /tech             the technician page (a login form without a session; 404 without a token)
  GET /tech/login       Authorization: Bearer TOKEN -> 204 and the session cookie
  GET /tech/logout      ends the session
  GET /tech/ws          the technician's live feed and buttons
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from edged.control.server import ControlServer
from edged.services.kiosk_screen.auth import COOKIE, SESSION_S, TechnicianGate
from edged.services.kiosk_screen.feed import ScreenFeed

log = logging.getLogger("edged.screen")
http_log = logging.getLogger("edged.screen.http")
http_log.setLevel(logging.WARNING)
"""websockets logs every plain HTTP answer as a rejected handshake at INFO: journal noise."""

SHOPPER_COMMANDS = frozenset({"cart.void", "cart.qty", "cart.cancel", "checkout.pay_qr"})
"""What the shopper's buttons may ask: the same control commands `edged cart ...` sends."""
CALL_STAFF = "screen.call_staff"
"""The shopper's "call staff" button: a warning in the journal and on the technician page."""
TECH_COMMANDS = frozenset({"reprint"})
TECH_EVERY_S = 1.0
MAX_QUEUED = 64
"""A page this far behind is dropped; it reconnects and starts again from a snapshot."""
MAX_MESSAGE_BYTES = 4096

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
SECURITY_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
]
PAGES = {"/": "kiosk.html", "/tech": "tech.html"}


def load_assets() -> dict[str, bytes]:
    """Every file shipped in `static/`, read once at start: the board needs no network."""
    folder = resources.files("edged.services.kiosk_screen") / "static"
    return {
        entry.name: entry.read_bytes()
        for entry in folder.iterdir()
        if entry.is_file() and any(entry.name.endswith(s) for s in CONTENT_TYPES)
    }


@dataclass
class ScreenServer:
    feed: ScreenFeed
    control: ControlServer
    gate: TechnicianGate | None
    tech_snapshot: Callable[[], Awaitable[dict[str, Any]]]
    assets: dict[str, bytes]
    language: str
    secure: bool
    _server: Server | None = None

    async def start(self, host: str, port: int, ssl: Any = None) -> int:
        self._server = await serve(
            self._socket,
            host,
            port,
            ssl=ssl,
            process_request=self._http,
            max_size=MAX_MESSAGE_BYTES,
            server_header=None,
            logger=http_log,
            compression=None,
        )
        return int(next(iter(self._server.sockets)).getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    # -- HTTP ---------------------------------------------------------------------------

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path.startswith("/tech") and self.gate is None:
            return _text(404, "Not Found", "no technician token is configured")
        if path in ("/ws", "/tech/ws"):
            if not _same_origin(request.headers):
                return _text(403, "Forbidden", "cross-origin WebSocket refused")
            if path == "/tech/ws" and not self._has_session(request.headers):
                return _text(403, "Forbidden", "no technician session")
            return None  # the WebSocket handshake goes on
        if path == "/tech/login":
            return self._login(request.headers)
        if path == "/tech/logout":
            assert self.gate is not None
            self.gate.logout(_cookie(request.headers))
            return _response(303, "See Other", b"", [("Location", "/tech"), self._cookie("", 0)])
        if path in PAGES:
            name = PAGES[path]
            if path == "/tech" and not self._has_session(request.headers):
                name = "login.html"
            return self._asset(name)
        if path.startswith("/static/"):
            return self._asset(path.removeprefix("/static/"))
        if path == "/favicon.ico":
            return _response(204, "No Content", b"", [])
        return _text(404, "Not Found", "not found")

    def _asset(self, name: str) -> Response:
        body = self.assets.get(name)
        if body is None:
            return _text(404, "Not Found", "not found")
        suffix = name[name.rfind(".") :]
        return _response(200, "OK", body, [("Content-Type", CONTENT_TYPES[suffix])])

    def _login(self, headers: Headers) -> Response:
        assert self.gate is not None
        scheme, _, offered = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not offered:
            return _text(401, "Unauthorized", "send Authorization: Bearer TOKEN")
        outcome = self.gate.login(offered.strip())
        if outcome.retry_after_s:
            wait = max(1, round(outcome.retry_after_s + 0.5))
            return _text(429, "Too Many Requests", f"wait {wait} s", [("Retry-After", str(wait))])
        if outcome.session is None:
            log.warning("technician login refused: wrong token")
            return _text(403, "Forbidden", "wrong token")
        log.info("technician logged in")
        return _response(204, "No Content", b"", [self._cookie(outcome.session, SESSION_S)])

    def _cookie(self, value: str, max_age: float) -> tuple[str, str]:
        secure = "; Secure" if self.secure else ""
        return (
            "Set-Cookie",
            f"{COOKIE}={value}; Path=/tech; Max-Age={int(max_age)}; HttpOnly; "
            f"SameSite=Strict{secure}",
        )

    def _has_session(self, headers: Headers) -> bool:
        return self.gate is not None and self.gate.valid(_cookie(headers))

    # -- WebSockets ---------------------------------------------------------------------

    async def _socket(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        if urlsplit(connection.request.path).path == "/tech/ws":
            await self._tech(connection, _cookie(connection.request.headers))
        else:
            await self._shopper(connection)

    async def _shopper(self, connection: ServerConnection) -> None:
        queue: asyncio.Queue[str] = asyncio.Queue()

        def enqueue(message: str) -> None:
            if queue.qsize() < MAX_QUEUED:
                queue.put_nowait(message)
            else:  # too far behind: close, the page reconnects from a fresh snapshot
                queue.put_nowait("")

        await connection.send(json.dumps({"type": "hello", "language": self.language}))
        # Snapshot and subscription with no await between: no change can fall in a gap.
        queue.put_nowait(self.feed.snapshot())
        unsubscribe = self.feed.subscribe(enqueue)
        sender = asyncio.create_task(_send_all(connection, queue))
        try:
            await self._commands(connection, SHOPPER_COMMANDS, None)
        finally:
            unsubscribe()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _tech(self, connection: ServerConnection, session: str | None) -> None:
        pusher = asyncio.create_task(self._push_tech(connection))
        try:
            await self._commands(connection, TECH_COMMANDS, session)
        finally:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher

    async def _push_tech(self, connection: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                snapshot = await self.tech_snapshot()
                await connection.send(json.dumps(snapshot, ensure_ascii=False, default=str))
                await asyncio.sleep(TECH_EVERY_S)

    async def _commands(
        self, connection: ServerConnection, allowed: frozenset[str], session: str | None
    ) -> None:
        running: set[asyncio.Task[None]] = set()
        try:
            async for message in connection:
                task = asyncio.create_task(self._command(connection, message, allowed, session))
                running.add(task)
                task.add_done_callback(running.discard)
        except ConnectionClosed:
            pass
        finally:
            for task in running:
                task.cancel()

    async def _command(
        self,
        connection: ServerConnection,
        message: str | bytes,
        allowed: frozenset[str],
        session: str | None,
    ) -> None:
        request_id: Any = None
        try:
            request = json.loads(message)
            request_id = request.get("id")
            command, args = request["cmd"], request.get("args", {})
            if not isinstance(command, str) or not isinstance(args, dict):
                raise TypeError
        except (ValueError, TypeError, KeyError, AttributeError):
            reply: dict[str, Any] = {"ok": False, "error": 'expected {"cmd": ..., "args": {}}'}
        else:
            if command == CALL_STAFF and allowed is SHOPPER_COMMANDS:
                log.warning("shopper asked for staff")
                reply = {"ok": True}
            elif command not in allowed:
                reply = {"ok": False, "error": f"{command!r} is not a button on this page"}
            elif session is not None and (self.gate is None or not self.gate.valid(session)):
                reply = {"ok": False, "error": "the technician session ended; log in again"}
            else:
                reply = await self.control.dispatch(command, args)
                reply.pop("result", None)  # the page learns the outcome from the feed
        with contextlib.suppress(ConnectionClosed):
            await connection.send(json.dumps({"type": "reply", "id": request_id, **reply}))


async def _send_all(connection: ServerConnection, queue: asyncio.Queue[str]) -> None:
    with contextlib.suppress(ConnectionClosed):
        while message := await queue.get():
            await connection.send(message)
        await connection.close(1013, "too far behind; reconnect")


def _same_origin(headers: Headers) -> bool:
    origin, host = headers.get("Origin"), headers.get("Host")
    if not origin or not host:
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == host


def _cookie(headers: Headers) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    for value in headers.get_all("Cookie"):
        with contextlib.suppress(CookieError):
            jar.load(value)
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


def _text(
    status: int, reason: str, text: str, extra: list[tuple[str, str]] | None = None
) -> Response:
    headers = [("Content-Type", "text/plain; charset=utf-8"), *(extra or [])]
    return _response(status, reason, (text + "\n").encode(), headers)


def _response(status: int, reason: str, body: bytes, extra: list[tuple[str, str]]) -> Response:
    headers = Headers(
        [*SECURITY_HEADERS, *extra, ("Content-Length", str(len(body))), ("Connection", "close")]
    )
    return Response(status, reason, headers, body)
