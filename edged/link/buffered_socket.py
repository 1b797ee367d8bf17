"""paho's socket with a buffer each way: one recv serves many packets, one send many.

paho reads a packet with three or more `recv` calls (command byte, each length byte, body)
and writes each packet with its own `send`. Draining a backlog, that is four system calls
per message, and every one releases and retakes the GIL, so the store's worker threads and
the event loop hand it back and forth four times a message: most of the loop's time went
there (py-spy, `edged bench drain`). Given this object as its socket, paho is unchanged: its
reads are served from one `recv` of up to `READ_SIZE` bytes, and its writes collect here
until the connection's writer callback flushes them with one `send` per turn of the loop.

Works the same over TLS: an `ssl.SSLSocket` raises its want-read/want-write errors from
`recv` as before, and `flush` keeps what the socket could not take yet.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

READ_SIZE = 65536
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class BufferedSocket:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._in = b""
        self._pos = 0
        self._out = bytearray()

    def fileno(self) -> int:
        return self._sock.fileno()

    def recv(self, size: int) -> bytes:
        """At most `size` bytes: from the buffer, else from one read of the socket (which
        raises as the socket does when nothing is there; b"" means the peer closed)."""
        if self._pos >= len(self._in):
            data = self._sock.recv(max(size, READ_SIZE))
            if len(data) <= size:
                return data
            self._in, self._pos = data, 0
        start = self._pos
        self._pos = min(start + size, len(self._in))
        return self._in[start : self._pos]

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Take all of `data`; it leaves with the next `flush`."""
        self._out += data
        return len(data)

    @property
    def unsent(self) -> int:
        return len(self._out)

    def flush(self) -> None:
        """Send what is buffered, as much as the socket takes now; the rest waits for the
        next writable event. A broken connection raises (OSError) to the caller."""
        while self._out:
            try:
                sent = self._sock.send(self._out)
            except _WOULD_BLOCK:
                return
            del self._out[:sent]

    def close(self) -> None:
        """paho closes right after queueing DISCONNECT: send it if the socket takes it."""
        try:
            self.flush()
        except OSError:
            pass
        finally:
            self._out.clear()
            self._sock.close()

    def __getattr__(self, name: str) -> Any:
        # setblocking, pending (TLS), getpeername...: whatever else paho asks of a socket.
        return getattr(self._sock, name)
