"""A unix-socket server speaking one JSON request and one JSON reply per line.

The socket file is 0660 so only the service user and its group (technicians) can use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("edged.control")

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
MAX_REQUEST_BYTES = 64 * 1024


class CommandError(Exception):
    """A request that cannot be carried out; the message goes back to the caller."""


class ControlServer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._handlers: dict[str, Handler] = {}
        self._server: asyncio.AbstractServer | None = None

    def register(self, command: str, handler: Handler) -> None:
        if command in self._handlers:
            raise ValueError(f"control command {command!r} registered twice")
        self._handlers[command] = handler

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=MAX_REQUEST_BYTES
        )
        os.chmod(self.path, 0o660)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(json.dumps(await self._answer(line), default=str).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            command = request["cmd"]
            args = request.get("args", {})
            if not isinstance(command, str) or not isinstance(args, dict):
                raise TypeError
        except (ValueError, TypeError, KeyError):
            return {"ok": False, "error": 'expected {"cmd": "...", "args": {...}}'}
        return await self.dispatch(command, args)

    async def dispatch(self, command: str, args: dict[str, Any]) -> dict[str, Any]:
        """Run one command as if it came over the socket (the kiosk page's buttons do this),
        and answer the same reply: `{"ok": true, "result": ...}` or `{"ok": false, "error"}`.
        """
        handler = self._handlers.get(command)
        if handler is None:
            return {"ok": False, "error": f"unknown command {command!r}"}
        try:
            return {"ok": True, "result": await handler(args)}
        except CommandError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception:
            log.exception("control command failed", extra={"command": command})
            return {"ok": False, "error": f"{command} failed; see the daemon's log"}
