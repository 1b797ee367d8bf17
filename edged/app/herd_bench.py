"""`edged bench herd`: N real daemon processes on one Mosquitto, the broker restarted under them.

What a fleet does after its broker restarts: every device lost it at the same instant, and
how they come back is decided by the reconnect back-off (full jitter between
`link.reconnect_min_s` and a ceiling that doubles per failed attempt, reset only after a
connection lasted `link.reconnect_stable_s`). Each daemon is `edged run` with its own config
and data folder, simulated devices, and the one broker as its endpoint.

Figures, read from two independent sides:
- the daemons' own JSON logs (millisecond timestamps of `mqtt connected` and of each failed
  attempt): the reconnect spread (first to last reconnect after the broker is back, and from
  the broker's start to the last reconnect) and the most connects in any one second;
- the broker's log (`New client connected`, second resolution): the most connects it
  accepted in any one second.
Memory: the daemons' resident set, summed, is printed too (50 Python processes add up).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from edged.app.daemon_swarm import free_port, rss_mb, stop_daemons

CONNECTED = "mqtt connected"
FAILED = "mqtt connect failed"


@dataclass(frozen=True)
class HerdResult:
    daemons: int
    down_s: float
    reconnect_min_s: float
    reconnect_max_s: float
    spread_s: float
    """First to last reconnect after the broker came back."""
    last_after_start_s: float
    """From the broker's restart to the last daemon's reconnect."""
    max_connects_per_s: int
    """Most successful connects in any one-second window (daemons' logs, ms timestamps)."""
    max_attempts_per_s: int
    """Most connection attempts, failed ones included, in any one second while the broker
    was up again (daemons' logs)."""
    broker_max_connects_per_s: int
    """Most `New client connected` lines in one wall-clock second of the broker's log."""
    reconnected: int
    rss_mb: float


class HerdBroker:
    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("mosquitto is not installed (scripts/system-packages.sh)")
        self.binary = binary
        self.port = free_port()
        self.log = workdir / "mosquitto.log"
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            # As root mosquitto would drop to its own user, which cannot write our log file.
            f"user root\npersistence false\nlistener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"log_dest file {self.log}\nlog_type notice\nconnection_messages true\n"
            "log_timestamp true\nlog_timestamp_format %Y-%m-%dT%H:%M:%S\n"
            "max_inflight_messages 0\nmax_queued_messages 0\n"
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start and wait until it accepts; returns the wall time it was started."""
        started = time.time()
        self._process = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return started
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            self._process.wait(timeout=10)
            self._process = None

    def connects_per_second(self, since: float) -> Counter[str]:
        counts: Counter[str] = Counter()
        if not self.log.exists():
            return counts
        for line in self.log.read_text(errors="replace").splitlines():
            stamp, _, text = line.partition(": ")
            if "New client connected" not in text:
                continue
            try:
                moment = datetime.fromisoformat(stamp).timestamp()
            except ValueError:
                continue
            if moment >= int(since):
                counts[stamp] += 1
        return counts


def _config(path: Path, data: Path, n: int, port: int, rmin: float, rmax: float) -> None:
    path.write_text(
        f"""[device]
site = "herd"
id = "kiosk-{n:03d}"

[paths]
data_dir = "{data}"

[broker]
mode = "external"
keepalive_s = 10

[[broker.endpoints]]
host = "127.0.0.1"
port = {port}

[link]
reconnect_min_s = {rmin}
reconnect_max_s = {rmax}

[cloud]
mode = "remote"

[health]
interval_s = 3600
""",
        encoding="utf-8",
    )


def _events(log: Path) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    if not log.exists():
        return out
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") in (CONNECTED, FAILED):
            out.append((datetime.fromisoformat(event["ts"]).timestamp(), event["event"]))
    return out


def _most_in_one_second(times: list[float]) -> int:
    """The largest number of `times` inside any window of one second."""
    ordered = sorted(times)
    best, first = 0, 0
    for last, moment in enumerate(ordered):
        while moment - ordered[first] >= 1.0:
            first += 1
        best = max(best, last - first + 1)
    return best


def run_herd(
    daemons: int, down_s: float, reconnect_min_s: float, reconnect_max_s: float
) -> HerdResult:
    work = Path(tempfile.mkdtemp(prefix="edged-herd-"))
    broker = HerdBroker(work)
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    try:
        broker.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGED_")}
        env.pop("NOTIFY_SOCKET", None)
        for n in range(daemons):
            folder = work / f"d{n:03d}"
            folder.mkdir()
            config = folder / "edged.toml"
            _config(config, folder / "data", n, broker.port, reconnect_min_s, reconnect_max_s)
            log = folder / "daemon.log"
            logs.append(log)
            with log.open("ab") as out:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "edged", "run", "--config", str(config)],
                        cwd=folder,
                        env=env,
                        stdout=out,
                        stderr=out,
                    )
                )
        _wait(lambda: all(_connected(log) >= 1 for log in logs), 300, processes, logs)
        rss = sum(rss_mb(p.pid) for p in processes)
        time.sleep(1)  # every daemon settled on its first connection
        broker.stop()
        time.sleep(down_s)
        restarted = broker.start()
        _wait(
            lambda: all(_connected(log) >= 2 for log in logs),
            120 + 2 * reconnect_max_s,
            processes,
            logs,
        )
        reconnects: list[float] = []
        attempts: list[float] = []
        for log in logs:
            events = [(t, e) for t, e in _events(log) if t >= restarted - 0.001]
            connected = [t for t, e in events if e == CONNECTED]
            if connected:
                reconnects.append(connected[0])
            attempts.extend(t for t, _ in events)
        per_second = broker.connects_per_second(restarted)
        return HerdResult(
            daemons=daemons,
            down_s=down_s,
            reconnect_min_s=reconnect_min_s,
            reconnect_max_s=reconnect_max_s,
            spread_s=max(reconnects) - min(reconnects),
            last_after_start_s=max(reconnects) - restarted,
            max_connects_per_s=_most_in_one_second(reconnects),
            max_attempts_per_s=_most_in_one_second(attempts),
            broker_max_connects_per_s=max(per_second.values(), default=0),
            reconnected=len(reconnects),
            rss_mb=rss,
        )
    finally:
        stop_daemons(processes)
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def _connected(log: Path) -> int:
    return sum(1 for _, e in _events(log) if e == CONNECTED)


def _wait(
    done: Callable[[], bool],
    timeout: float,
    processes: list[subprocess.Popen[bytes]],
    logs: list[Path],
) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        for process, log in zip(processes, logs, strict=True):
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"a daemon exited with {process.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the herd did not connect within {timeout:.0f} s")
        time.sleep(0.25)
