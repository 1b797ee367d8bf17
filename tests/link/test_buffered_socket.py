"""paho's socket buffers: what paho writes leaves in one send, what arrives is read once.

A real socketpair stands for the broker's end: every byte must arrive, in order, and a
socket that cannot take everything keeps the rest for the next writable turn.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from edged.link.buffered_socket import READ_SIZE, BufferedSocket


@pytest.fixture
def pair() -> Iterator[tuple[BufferedSocket, socket.socket]]:
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    broker.settimeout(5)
    try:
        yield BufferedSocket(ours), broker
    finally:
        ours.close()
        broker.close()


def test_writes_collect_until_flush_and_leave_in_order(
    pair: tuple[BufferedSocket, socket.socket],
) -> None:
    sock, broker = pair
    packets = [bytes([0x32, 3, n, n, n]) for n in range(10)]
    for packet in packets:
        assert sock.send(packet) == len(packet), "paho sees each packet taken whole"
    assert sock.unsent == 50

    broker.setblocking(False)
    with pytest.raises(BlockingIOError):
        broker.recv(100)  # nothing has left before the flush
    sock.flush()

    broker.settimeout(5)
    assert sock.unsent == 0
    assert broker.recv(100) == b"".join(packets)


def test_reads_are_served_from_one_recv(pair: tuple[BufferedSocket, socket.socket]) -> None:
    sock, broker = pair
    broker.sendall(b"\x40\x02\x00\x01\x40\x02\x00\x02")
    _wait_readable(sock)

    # as paho reads a packet: command byte, length byte, body
    assert [sock.recv(1), sock.recv(1), sock.recv(2)] == [b"\x40", b"\x02", b"\x00\x01"]
    assert [sock.recv(1), sock.recv(1), sock.recv(2)] == [b"\x40", b"\x02", b"\x00\x02"]
    with pytest.raises(BlockingIOError):
        sock.recv(1)  # buffer and socket both empty: paho's "try again later"


def test_a_short_buffer_gives_what_it_has_then_reads_the_socket(
    pair: tuple[BufferedSocket, socket.socket],
) -> None:
    sock, broker = pair
    broker.sendall(b"\x30\x05ab")
    _wait_readable(sock)
    assert sock.recv(1) == b"\x30"
    assert sock.recv(1) == b"\x05"
    assert sock.recv(5) == b"ab", "what there is, as a socket would"
    broker.sendall(b"cde")
    _wait_readable(sock)
    assert sock.recv(3) == b"cde"


def test_a_large_read_is_not_cut_to_the_buffer_size(
    pair: tuple[BufferedSocket, socket.socket],
) -> None:
    sock, broker = pair
    body = bytes(range(256)) * 400  # 100 KB: more than one READ_SIZE
    broker.sendall(body)
    got = bytearray()
    while len(got) < len(body):
        _wait_readable(sock)
        got += sock.recv(len(body) - len(got))
    assert bytes(got) == body
    assert len(body) > READ_SIZE


def test_what_the_socket_cannot_take_waits_for_the_next_flush(
    pair: tuple[BufferedSocket, socket.socket],
) -> None:
    sock, broker = pair
    body = bytes(range(256)) * 16384  # 4 MB: more than a socketpair holds
    sock.send(body)
    sock.flush()
    assert 0 < sock.unsent < len(body), "the socket took part, the rest is kept"

    got = bytearray()
    while len(got) < len(body):
        got += broker.recv(1 << 20)
        sock.flush()
    assert bytes(got) == body
    assert sock.unsent == 0


def test_close_sends_what_paho_queued_last(pair: tuple[BufferedSocket, socket.socket]) -> None:
    sock, broker = pair
    sock.send(b"\xe0\x00")  # paho queues DISCONNECT and closes at once
    sock.close()
    assert broker.recv(10) == b"\xe0\x00"
    assert broker.recv(10) == b"", "then the connection is closed"


def test_a_closed_peer_reads_as_end_of_stream(pair: tuple[BufferedSocket, socket.socket]) -> None:
    sock, broker = pair
    broker.close()
    _wait_readable(sock)
    assert sock.recv(1) == b""


def _wait_readable(sock: BufferedSocket) -> None:
    import select

    ready, _, _ = select.select([sock.fileno()], [], [], 5)
    assert ready, "nothing arrived within 5 s"
