"""A disk that is really full, during a sale: the daemon as a process, its data on a 64 MB
tmpfs the test mounts and fills to 0 bytes free.

The shopper is told "sales stopped, please ask staff" at the first write that fails, the
line is not added, a shown payment code starts nothing, `edged status` and `evt/health` say
why at once, no task restarts; once the filler is deleted the same sale resumes by itself,
takes its last item and is paid, and nothing stored is lost.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edged.cloudsim.scenarios import Settings
from edged.services.checkout import messages as M
from tests.e2e.kiosk import ITEMS, Kiosk, code, write_config
from tests.link.helpers import Observer
from tests.support.daemon_process import DaemonProcess
from tests.support.kiosk_fixture import running_kiosk
from tests.support.mosquitto import Mosquitto

DISK_MB = 64


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real size-limited filesystem (needs root, as CI has: fails, never skips, without)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m,mode=0755", "tmpfs", str(mount)],
        check=True,
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def kiosk_on_small_disk(mosquitto: Mosquitto, tmp_path: Path, small_disk: Path) -> Iterator[Kiosk]:
    with running_kiosk(mosquitto, tmp_path, small_disk / "data", settings=Settings()) as kiosk:
        yield kiosk


def fill(disk: Path) -> Path:
    """Write a filler file until the filesystem has not one byte left."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    assert shutil.disk_usage(disk).free == 0
    return filler


def lines(status: dict[str, Any]) -> int:
    sale = status["checkout"]["sale"]
    return 0 if sale is None else len(sale["lines"])


def test_a_full_disk_stops_sales_at_once_and_the_same_sale_completes_after(
    kiosk_on_small_disk: Kiosk, small_disk: Path, mosquitto: Mosquitto
) -> None:
    kiosk = kiosk_on_small_disk
    health = Observer(mosquitto.host, mosquitto.port, ["edge/v1/e2e/kiosk-1/evt/health"]).start()
    try:
        kiosk.scan(ITEMS[0])
        kiosk.scan(ITEMS[1])
        assert lines(kiosk.status()) == 2
        # No slack left in the WAL: the next write needs new disk blocks, as on a disk that
        # has been full for a while.
        with sqlite3.connect(kiosk.data / "edged.db") as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        filler = fill(small_disk)

        # Scans until the first write fails (a write may still fit in a page SQLite holds):
        # each scan is either a committed line or "sales stopped" with nothing added.
        for _attempt in range(40):
            before = lines(kiosk.status())
            kiosk.scan(ITEMS[2])
            status = kiosk.status()
            if status["checkout"]["display"]["lines"][:1] == [M.SALES_STOPPED_ASK_STAFF] or (
                status["checkout"]["display"]["headline"] == M.SALES_STOPPED_ASK_STAFF
            ):
                assert lines(status) == before, "the line that could not be stored is not shown"
                break
            assert lines(status) == before + 1
        else:
            raise AssertionError("no write failed on a full disk")
        stuck_lines = lines(status)
        # at once, not at the next maintenance round
        assert status["store"]["sales_allowed"] is False
        assert status["store"]["alarm"] == "store cannot write: disk full"
        assert status["store"]["disk_free_bytes"] == 0
        assert status["checkout"]["state"] == "basket"
        assert status["checkout"]["display"]["tone"] == "error"

        # a payment code shown now starts nothing, and the shopper is told
        kiosk.scan(code("89"))
        status = kiosk.status()
        assert status["payments"]["last"] is None and not status["payments"]["busy"]
        assert status["checkout"]["display"]["headline"] == M.SALES_STOPPED_ASK_STAFF
        assert lines(status) == stuck_lines

        health.wait_for(lambda seen: any(_alarm(m.json()) for m in seen), within_s=5)
        assert all(t["restarts"] == 0 for t in kiosk.status()["tasks"]), kiosk.status()["tasks"]

        # space returns: everything resumes by itself
        filler.unlink()
        status = kiosk.wait(
            "sales allowed again", lambda s: s["store"]["sales_allowed"], timeout=10
        )
        assert status["store"]["alarm"] == ""
        assert status["store"]["disk_free_bytes"] > 32 * 1024 * 1024, "a fresh figure"
        assert status["checkout"]["display"]["headline"] != M.SALES_STOPPED_ASK_STAFF
        assert lines(status) == stuck_lines, "the open sale stayed as it was"

        kiosk.scan(ITEMS[2])
        assert lines(kiosk.status()) == stuck_lines + 1
        kiosk.scan(code("89"))
        paid = kiosk.wait(
            "paid",
            lambda s: (
                s["checkout"]["state"] == "idle"
                and (s["payments"]["last"] or {}).get("state") == "paid"
            ),
            timeout=20,
        )
        assert paid["checkout"]["print_queue"]["printed"] == 1
        assert len(kiosk.receipts()) == 1
        assert all(t["restarts"] == 0 for t in paid["tasks"]), paid["tasks"]
        [sale] = kiosk.rows("SELECT state, total_fen FROM sales")
        assert sale["state"] == "paid"
    finally:
        health.stop()


def _alarm(body: Any) -> bool:
    report = body.get("body", {}) if isinstance(body, dict) else {}
    return bool(report.get("store_alarm")) and report.get("sales_allowed") is False


def test_a_payment_result_arriving_while_the_disk_is_full_waits_and_pays_once(
    kiosk_on_small_disk: Kiosk, small_disk: Path
) -> None:
    kiosk = kiosk_on_small_disk
    kiosk.sim.settings.native_pay_after_s = 2.0
    kiosk.fill_basket()
    qr = kiosk.daemon.control("checkout.pay_qr")  # the shopper pays in the mini-program
    with sqlite3.connect(kiosk.data / "edged.db") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    filler = fill(small_disk)

    status = kiosk.wait(
        "the pushed SUCCESS waiting for the store",
        lambda s: s["link"]["downlink"]["store_unavailable"] > 0,
        timeout=15,
    )
    assert kiosk.cloud()["trades"][qr["trade_no"]]["state"] == "SUCCESS"
    assert kiosk.payment_state(status) == "native_open", "nothing moved without the store"
    assert status["store"]["alarm"] == "store cannot write: disk full"
    assert status["checkout"]["display"]["headline"] == M.SALES_STOPPED_ASK_STAFF
    assert status["link"]["downlink"]["rejected"] == {}, "the result is kept, not rejected"
    assert kiosk.receipts() == []

    filler.unlink()
    paid = kiosk.wait(
        "paid",
        lambda s: (
            s["checkout"]["state"] == "idle"
            and (s["payments"]["last"] or {}).get("state") == "paid"
            and s["checkout"]["print_queue"]["printed"] == 1
        ),
        timeout=30,
    )
    assert len(kiosk.receipts()) == 1
    assert kiosk.cloud()["trades"][qr["trade_no"]]["charges"] == 1
    assert all(t["restarts"] == 0 for t in paid["tasks"]), paid["tasks"]


def test_a_crash_between_printing_and_marking_printed_gives_one_extra_receipt_marked_copy(
    mosquitto: Mosquitto, tmp_path: Path, small_disk: Path
) -> None:
    """The window made wide on purpose: the receipt prints while the disk is too full for
    the "printed" mark, the daemon is killed there, and the restart prints it once more."""
    paper = tmp_path / "paper"  # the printer's output is not on the small disk
    printer = f'\n[printer]\ndriver = "sim"\noutput_dir = "{paper}"\n'
    with running_kiosk(
        mosquitto, tmp_path, small_disk / "data", extra=printer, settings=Settings()
    ) as kiosk:
        daemon = kiosk.daemon
        daemon.control("sim.paper", {"state": "out"})
        kiosk.fill_basket()
        kiosk.scan(code("89"))
        kiosk.wait(
            "paid, receipt waiting for paper",
            lambda s: s["checkout"]["print_queue"]["problem"] != "",
        )
        with sqlite3.connect(kiosk.data / "edged.db") as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        filler = fill(small_disk)
        daemon.control("sim.paper", {"state": "in"})
        wait_for_files(paper, 1)  # printed; the "printed" mark cannot be written
        assert kiosk.status()["checkout"]["print_queue"]["queued"] == 1
        daemon.kill()  # the crash, between printing and marking printed

        filler.unlink()
        daemon.start()
        kiosk.wait_ready()
        kiosk.wait("printed", lambda s: s["checkout"]["print_queue"]["printed"] == 1)
        time.sleep(0.5)  # a wrong third receipt would be out by now
    first, second = [p.read_text(encoding="utf-8") for p in sorted(paper.glob("receipt-*.txt"))]
    assert "重印 COPY" not in first
    assert "重印 COPY" in second, "the extra receipt says it is a copy"
    assert "¥10.00" in first and "¥10.00" in second, "the same sale, twice at most"


def wait_for_files(folder: Path, count: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while len(list(folder.glob("receipt-*.txt"))) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} receipts in {timeout} s")
        time.sleep(0.05)


def test_a_daemon_started_on_a_full_disk_says_why_and_starts_once_there_is_room(
    mosquitto: Mosquitto, tmp_path: Path, small_disk: Path
) -> None:
    data = small_disk / "data"
    config = tmp_path / "edged.toml"
    write_config(config, data, mosquitto.port)
    daemon = DaemonProcess(config, tmp_path / "daemon")
    daemon.start()
    daemon.terminate()
    filler = fill(small_disk)
    try:
        with pytest.raises(RuntimeError, match="exited with 1"):
            daemon.start()
        [said] = [
            line for line in daemon.log_tail().splitlines() if '"event": "cannot start"' in line
        ][-1:]
        # SQLite says I/O error when it cannot even make its shared-memory file, FULL else
        pattern = r"the disk takes no writes \((disk full|disk I/O error), 0 bytes free\); free"
        assert re.search(pattern, said), said
    finally:
        filler.unlink()
    try:
        daemon.start()
        assert daemon.control("status")["store"]["sales_allowed"] is True
    finally:
        daemon.kill()
