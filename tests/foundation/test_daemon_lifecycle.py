"""The daemon as systemd runs it: READY fast, watchdog pings, clean and quick stop, no loss."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support.daemon_process import DaemonProcess


def boots(db: Path) -> list[tuple[str, str | None]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT boot_id, stopped_at FROM boots ORDER BY seq").fetchall()


def test_the_development_default_is_ready_within_a_second_and_stops_within_two(
    tmp_path: Path,
) -> None:
    daemon = DaemonProcess(None, tmp_path)
    try:
        startup_s = daemon.start()
        status = daemon.control("status")
    finally:
        code, stop_s = daemon.terminate()

    assert startup_s <= 1.0, f"READY after {startup_s:.2f} s"
    assert status["device"] == {"site": "dev-site", "id": "dev-kiosk"}
    assert {d["kind"] for d in status["devices"]} >= {"scanner", "printer", "display"}
    assert code == 0
    assert stop_s <= 2.0, f"stopped after {stop_s:.2f} s"
    assert "STOPPING=1" in daemon.notifications
    assert (tmp_path / "var" / "edged.db").exists()
    assert not (tmp_path / "var" / "edged.sock").exists(), "socket file removed on stop"


def test_sigint_stops_cleanly_and_the_stop_is_recorded(tmp_path: Path) -> None:
    daemon = DaemonProcess(None, tmp_path)
    daemon.start()
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGINT)
    assert daemon.process.wait(timeout=5) == 0
    daemon.kill()

    [(_, stopped_at)] = boots(tmp_path / "var" / "edged.db")
    assert stopped_at is not None, daemon.log_tail()


def test_watchdog_pings_arrive_at_half_the_interval(tmp_path: Path) -> None:
    daemon = DaemonProcess(None, tmp_path, env={"WATCHDOG_USEC": "400000"})
    try:
        daemon.start()
        daemon.wait_for_notification("WATCHDOG=1", timeout=2)
        first = daemon.notifications.count("WATCHDOG=1")
        daemon.notifications.clear()
        daemon.wait_for_notification("WATCHDOG=1", timeout=1)
    finally:
        daemon.terminate()
    assert first >= 1
    assert "STOPPING=1" in daemon.notifications


def test_sigkill_right_after_a_commit_loses_nothing(tmp_path: Path) -> None:
    daemon = DaemonProcess(None, tmp_path)
    daemon.start()  # the boot fact and its outbox row commit before READY
    daemon.kill()
    db = tmp_path / "var" / "edged.db"

    first_boot = boots(db)
    assert len(first_boot) == 1 and first_boot[0][1] is None, "killed: never stamped stopped"

    daemon.start()
    status = daemon.control("status")
    daemon.terminate()

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        outbox = conn.execute(
            "SELECT msg_id, json_extract(payload, '$.body.previous_shutdown') FROM outbox "
            "WHERE json_extract(payload, '$.type') = 'device.boot' ORDER BY seq"
        ).fetchall()
    assert boots(db)[0][0] == first_boot[0][0]
    assert len(outbox) == 2, "both boot facts kept their outbox rows"
    assert outbox[1][1] == "unclean"
    assert status["boot_id"] == boots(db)[1][0]


def test_an_unusable_data_folder_stops_with_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "edged.db").write_bytes(b"this is not a database" * 100)

    result = subprocess.run(
        [sys.executable, "-m", "edged", "run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=20,
    )

    assert result.returncode == 1
    assert "not a usable SQLite database" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_broken_config_exits_2_before_anything_starts(tmp_path: Path) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text('[printer]\ndriver = "network"\n', encoding="utf-8")

    result = subprocess.run(
        [sys.executable, "-m", "edged", "run", "--config", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=20,
    )

    assert result.returncode == 2
    assert "kiosk.toml: printer.host: required key is missing" in result.stderr
    assert not (tmp_path / "var").exists()
