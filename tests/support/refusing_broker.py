"""A loopback MQTT 5 server that answers CONNECT with one chosen reason code, nothing more.

No broker we can run on CI can be told to say "server busy" or "use another server" on
demand, so this speaks exactly those packets (MQTT 5.0 sections 3.2 CONNACK and 3.14
DISCONNECT, with the Server Reference property 0x1C) to a real paho client, and counts the
connections it saw. `then_disconnect` accepts the connection first (CONNACK 0) and sends the
reason as a server DISCONNECT, as a broker does when it sheds or moves a live client.
`grant_qos` accepts and answers each SUBSCRIBE with that QoS; `puback` accepts and answers
each QoS 1 PUBLISH with the PUBACK bytes it returns for the packet's topic and id (section
3.4), so a test can pin every form a broker may send.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.ports import free_port

SERVER_REFERENCE = 0x1C


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes | bytearray, at: int) -> tuple[int, int]:
    """(value, bytes used) of the variable byte integer at `at`."""
    value, shift, used = 0, 0, 0
    while True:
        byte = data[at + used]
        used += 1
        value += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, used


def _take_packet(buffer: bytearray) -> tuple[int, int, bytes] | None:
    """Remove one whole packet from the front of `buffer`: (packet type, flags, body)."""
    if len(buffer) < 2:
        return None
    try:
        length, used = _read_varint(buffer, 1)
    except IndexError:
        return None
    end = 1 + used + length
    if len(buffer) < end:
        return None
    kind, flags, body = buffer[0] >> 4, buffer[0] & 0x0F, bytes(buffer[1 + used : end])
    del buffer[:end]
    return kind, flags, body


def _properties(reference: str | None) -> bytes:
    body = b""
    if reference is not None:
        raw = reference.encode()
        body = bytes([SERVER_REFERENCE]) + len(raw).to_bytes(2, "big") + raw
    return _varint(len(body)) + body


def connack(reason: int, reference: str | None = None) -> bytes:
    variable = bytes([0x00, reason]) + _properties(reference)
    return bytes([0x20]) + _varint(len(variable)) + variable


def disconnect(reason: int, reference: str | None = None) -> bytes:
    variable = bytes([reason]) + _properties(reference)
    return bytes([0xE0]) + _varint(len(variable)) + variable


@dataclass
class RefusingBroker:
    reason: int
    reference: str | None = None
    then_disconnect: bool = False
    grant_qos: int | None = None
    puback: Callable[[str, bytes], bytes] | None = None
    """(topic, packet id) -> the whole PUBACK packet to send for that PUBLISH."""
    port: int = field(default_factory=free_port)
    connects: int = 0
    _server: socket.socket | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RefusingBroker:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def seen(self) -> int:
        with self._lock:
            return self.connects

    def _serve(self) -> None:
        server = self._server  # `stop` drops the attribute; closing ends accept()
        assert server is not None
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    first = conn.recv(4096)  # the CONNECT (small enough for one read)
                    if not first or first[0] >> 4 != 1:
                        continue
                    with self._lock:
                        self.connects += 1
                    if self.grant_qos is not None or self.puback is not None:
                        conn.sendall(connack(0x00))
                        rest = bytearray(first)
                        _take_packet(rest)  # the CONNECT itself
                        self._grant(conn, bytes(rest))
                        continue
                    if self.then_disconnect:
                        conn.sendall(connack(0x00) + disconnect(self.reason, self.reference))
                    else:
                        conn.sendall(connack(self.reason, self.reference))
                    conn.recv(4096)  # let the client close first
                except OSError:
                    continue

    def _grant(self, conn: socket.socket, pending: bytes) -> None:
        """Read packets until the client goes; SUBACK every SUBSCRIBE with `grant_qos`,
        PUBACK every QoS 1 PUBLISH as `puback` says."""
        buffer = bytearray(pending)
        while True:
            packet = _take_packet(buffer)
            if packet is None:
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data
                continue
            kind, flags, body = packet
            if kind == 0x3 and (flags >> 1) & 0x3 == 1 and self.puback is not None:
                size = int.from_bytes(body[:2], "big")
                topic, packet_id = body[2 : 2 + size].decode(), body[2 + size : 4 + size]
                conn.sendall(self.puback(topic, packet_id))
            if (
                kind == 0x8 and self.grant_qos is not None
            ):  # SUBSCRIBE: packet id, properties, then (filter, options) pairs
                packet_id = body[:2]
                props_len, used = _read_varint(body, 2)
                at = 2 + used + props_len
                filters = 0
                while at < len(body):
                    size = int.from_bytes(body[at : at + 2], "big")
                    at += 2 + size + 1
                    filters += 1
                assert self.grant_qos is not None
                variable = packet_id + b"\x00" + bytes([self.grant_qos]) * filters
                conn.sendall(bytes([0x90]) + _varint(len(variable)) + variable)

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
