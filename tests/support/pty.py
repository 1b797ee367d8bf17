"""A pseudo-terminal standing in for a serial device, reached through a stable symlink."""

from __future__ import annotations

import os
import select
import time
import tty
from pathlib import Path


class Pty:
    """The device's end is the master; the daemon opens the slave by `link`, a stable name
    like /dev/edged-scanner or /dev/edged-relay."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = -1
        self.plug()

    def plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        name = os.ttyname(slave)
        os.close(slave)
        self.master = master
        os.set_blocking(master, False)
        if self.link.is_symlink():
            self.link.unlink()
        self.link.symlink_to(name)

    def unplug(self) -> None:
        os.close(self.master)
        self.master = -1
        self.link.unlink()

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def read_all(self) -> bytes:
        """Whatever the daemon wrote so far (nothing waits)."""
        out = b""
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except (BlockingIOError, OSError):
                return out
            if not chunk:
                return out
            out += chunk

    def read_exactly(self, count: int, within: float = 3.0) -> bytes:
        """Wait until `count` bytes arrived; fails with what came when they do not."""
        out = b""
        deadline = time.monotonic() + within
        while len(out) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"expected {count} bytes within {within} s, got {out.hex()}")
            select.select([self.master], [], [], remaining)
            out += self.read_all()
        return out

    def close(self) -> None:
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
