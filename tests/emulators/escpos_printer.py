"""A TCP 9100 receipt printer emulator: records what would be printed, answers status queries.

It behaves like a thermal printer as far as the driver can tell:
- real-time commands (DLE EOT n, DLE DC4 8 clear-buffers) are answered on receipt, even while
  printing is stopped;
- everything else is "printed" in order; GS r 1 is answered when printing reaches it;
- paper can run out after a scripted number of bytes, in the middle of a receipt: printing
  stops, later data waits in the buffer, and printing resumes when paper is loaded (unless the
  driver cleared the buffer);
- the cover can be open, the paper near its end, or the printer can answer nothing at all;
- `power_cycle()` drops the connection and forgets the buffer, like pulling the plug.

`receipts()` parses the printed bytes back into text lines (GB18030), QR payloads, cuts and
drawer kicks, so tests assert what a shopper would hold in their hand.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

DLE, ESC, GS, FS, LF = 0x10, 0x1B, 0x1D, 0x1C, 0x0A


@dataclass
class Receipt:
    lines: list[str] = field(default_factory=list)
    qr: list[str] = field(default_factory=list)
    cut: bool = False
    drawer_kicks: int = 0
    unknown: list[bytes] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class PrinterEmulator:
    def __init__(self) -> None:
        self.printed = bytearray()
        """Bytes that reached paper."""
        self.held = bytearray()
        """Bytes received while printing was stopped."""
        self.received = bytearray()
        self.paper_left: int | None = None
        """Printable bytes until the roll runs out (None: endless roll)."""
        self.paper_out = False
        self.paper_near_end = False
        self.cover_open = False
        self.silent = False
        self.status_queries = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._rt = bytearray()
        self.port = 0

    # -- scripting -----------------------------------------------------------------------

    def run_out_after(self, printable_bytes: int) -> None:
        self.paper_left = printable_bytes

    def load_paper(self) -> None:
        """A new roll: printing resumes with whatever is still in the buffer."""
        self.paper_out = False
        self.paper_left = None
        held, self.held = bytes(self.held), bytearray()
        self._process(held)

    @property
    def stopped(self) -> bool:
        return self.paper_out or self.cover_open

    # -- server --------------------------------------------------------------------------

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port or self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=2)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def power_cycle(self) -> None:
        """Off: connection gone, buffer lost. On again on the same port."""
        await self.stop()
        self.held.clear()
        self._rt.clear()
        await self.start(self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        try:
            while data := await reader.read(4096):
                self.received += data
                self._feed(data, writer)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if writer in self._writers:
                self._writers.remove(writer)
            writer.close()

    def _answer(self, byte: int) -> None:
        if self.silent or not self._writers:
            return
        self._writers[-1].write(bytes([byte]))

    # -- byte handling -------------------------------------------------------------------

    def _feed(self, data: bytes, writer: asyncio.StreamWriter) -> None:
        """Pick real-time commands out of the stream, pass the rest on for printing."""
        passthrough = bytearray()
        for byte in data:
            if self._rt or byte == DLE:
                self._rt.append(byte)
                if not self._realtime():
                    continue
                if self._rt[:2] not in (b"\x10\x04", b"\x10\x14"):
                    passthrough += self._rt  # a lone DLE: ordinary data
                self._rt.clear()
                continue
            passthrough.append(byte)
        self._process(bytes(passthrough))

    def _realtime(self) -> bool:
        """True once self._rt holds a complete real-time command (or is not one)."""
        rt = self._rt
        if len(rt) < 2:
            return False
        if rt[1] == 0x04:
            if len(rt) < 3:
                return False
            self.status_queries += 1
            self._answer(self._eot(rt[2]))
            return True
        if rt[1] == 0x14:
            if len(rt) < 3:
                return False
            if rt[2] == 0x08:
                if len(rt) < 10:
                    return False
                self.held.clear()
            elif len(rt) < 5:
                return False
            return True
        return True

    def _eot(self, n: int) -> int:
        byte = 0x12
        if n == 1 and (self.stopped):
            byte |= 0x08
        elif n == 2:
            byte |= 0x04 if self.cover_open else 0
            byte |= 0x20 if self.paper_out else 0
        elif n == 4:
            byte |= 0x0C if self.paper_near_end else 0
            byte |= 0x60 if self.paper_out else 0
        return byte

    def _process(self, data: bytes) -> None:
        for byte in data:
            if self.stopped or self.held:
                self.held.append(byte)
                continue
            self.printed.append(byte)
            if self.printed.endswith(b"\x1d\x72\x01"):
                del self.printed[-3:]
                self._answer(0x03 if self.paper_near_end else 0x00)
                continue
            if self.paper_left is not None:
                self.paper_left -= 1
                if self.paper_left <= 0:
                    self.paper_out = True

    # -- reading the paper ---------------------------------------------------------------

    def receipts(self, encoding: str = "gb18030") -> list[Receipt]:
        """Split the printed bytes at each ESC @ (a job starts) and decode them."""
        jobs = [j for j in bytes(self.printed).split(b"\x1b\x40") if j]
        return [parse_receipt(job, encoding) for job in jobs]


# Fixed-length commands python-escpos emits: prefix -> total length.
_FIXED = {
    b"\x1c\x26": 2,  # FS & Chinese mode on
    b"\x1c\x2e": 2,  # FS . Chinese mode off
    b"\x1b\x61": 3,  # ESC a n align
    b"\x1b\x45": 3,  # ESC E n bold
    b"\x1b\x21": 3,  # ESC ! n print mode
    b"\x1d\x21": 3,  # GS ! n size
    b"\x1b\x2d": 3,  # ESC - n underline
    b"\x1b\x4d": 3,  # ESC M n font
    b"\x1b\x64": 3,  # ESC d n feed
    b"\x1b\x7b": 3,  # ESC { n upside down
    b"\x1d\x42": 3,  # GS B n invert
    b"\x1b\x70": 5,  # ESC p m t1 t2 drawer kick
}


def parse_receipt(job: bytes, encoding: str) -> Receipt:
    receipt = Receipt()
    text = bytearray()
    i = 0
    while i < len(job):
        byte = job[i]
        if byte == LF:
            receipt.lines.append(text.decode(encoding))
            text.clear()
            i += 1
            continue
        if byte in (ESC, GS, FS):
            head = job[i : i + 2]
            if head == b"\x1d\x56":  # GS V m [n]
                receipt.cut = True
                i += 4 if job[i + 2 : i + 3] in (b"\x41", b"\x42") else 3
                continue
            if head == b"\x1d\x28" and job[i + 2 : i + 3] == b"k":  # GS ( k pL pH cn fn ...
                size = job[i + 3] + 256 * job[i + 4]
                body = job[i + 5 : i + 5 + size]
                if body[:2] == b"1P":  # store QR data: cn=49 fn=80 m=48
                    receipt.qr.append(body[3:].decode("utf-8"))
                i += 5 + size
                continue
            length = _FIXED.get(head)
            if length is None:
                receipt.unknown.append(bytes(job[i : i + 3]))
                i += 2
                continue
            if head == b"\x1b\x70":
                receipt.drawer_kicks += 1
            i += length
            continue
        text.append(byte)
        i += 1
    if text:
        receipt.lines.append(text.decode(encoding))
    return receipt
