"""`edged demo`: a whole kiosk on one laptop, a scripted shopper, and what they saw.

It starts the embedded broker and the simulated cloud in this process and the daemon as a
child process (the real `edged run`, on simulated devices, in a temporary data folder), then
plays a shopper through the control socket exactly as `edged sim scan` would: three items,
a WeChat Pay code the backend keeps "user paying" for a few seconds, the receipt. It prints
every view the customer display showed and the receipt text, and exits 0 only when the sale
was paid once, the receipt printed once and the cloud received the transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEMO_ITEMS = ("6901028075831", "6934567890122", "6902300101019")
DEMO_CODE = "134567890123456702"
"""A WeChat Pay-shaped code; its ending `02` asks the simulated cloud for a user-paying wait."""
USER_PAYING_S = 3.0
DEADLINE_S = 60.0


class DemoFailed(RuntimeError):
    pass


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="run broker, simulated cloud and daemon, play a shopper, print display and receipt",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary data folder and print its path"
    )
    parser.add_argument(
        "--broker",
        metavar="HOST:PORT",
        type=_address,
        default=None,
        help="use this running MQTT broker instead of starting the embedded one",
    )
    parser.add_argument(
        "--vending",
        action="store_true",
        help="a vending counter: the paid sale releases its door, then an online order is "
        "collected from a slot with its pickup code",
    )
    parser.set_defaults(handler=handle)


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def handle(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="edged-demo-"))
    try:
        return asyncio.run(_run(workdir, args.broker, vending=args.vending))
    except DemoFailed as exc:
        print(f"\nedged demo FAILED: {exc}", file=sys.stderr)
        log = workdir / "daemon.log"
        if log.exists():
            tail = log.read_text(errors="replace").splitlines()[-25:]
            print("daemon log (last lines):\n" + "\n".join(tail), file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"data kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


async def _run(workdir: Path, external: tuple[str, int] | None, *, vending: bool = False) -> int:
    from edged.cloudsim.scenarios import Settings
    from edged.cloudsim.server import CloudSim
    from edged.link.embedded_broker import EmbeddedBroker

    started = time.monotonic()
    broker = EmbeddedBroker("127.0.0.1", 0) if external is None else None
    host, port = await broker.start() if broker is not None else (external or ("", 0))
    data = workdir / "data"
    settings = Settings(user_paying_s=USER_PAYING_S)
    mqtt5 = broker is None or broker.mqtt5  # amqtt, the fallback, speaks 3.1.1 only
    sim = CloudSim(host, port, data / "cloudsim", settings, mqtt5=mqtt5)
    daemon: asyncio.subprocess.Process | None = None
    try:
        await asyncio.to_thread(sim.start)
        config = _write_config(workdir, data, host, port, mqtt5, vending=vending)
        with (workdir / "daemon.log").open("wb") as log:
            daemon = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "edged", "run", "--config", str(config),
                stdout=asyncio.subprocess.PIPE, stderr=log, cwd=workdir,
            )  # fmt: skip
        echo = asyncio.create_task(_echo_display(daemon))
        where = "embedded broker" if broker is not None else "broker"
        print(f"edged demo: {where} on {host}:{port}, simulated cloud, daemon pid "
              f"{daemon.pid}, data in {data}")  # fmt: skip
        socket_path = data / "edged.sock"
        await _wait_ready(socket_path, daemon)
        await _shopper(socket_path)
        receipt = await _wait_receipt(socket_path, data)
        await asyncio.sleep(0.2)  # let the last display frames through
        print("\nreceipt:\n" + receipt)
        await _check_cloud(sim)
        if vending:
            await _vending(socket_path, sim)
        echo.cancel()
        print(f"edged demo: done in {time.monotonic() - started:.1f} s")
        return 0
    finally:
        if daemon is not None and daemon.returncode is None:
            daemon.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(daemon.wait(), 5)
            if daemon.returncode is None:
                daemon.kill()
                await daemon.wait()
        await asyncio.to_thread(sim.stop)
        if broker is not None:
            await broker.stop()


VENDING_CONFIG = """
[device]
kind = "vending"
id = "dev-vending"

[release]
driver = "sim"
slots = 2

[release.sensor]
driver = "sim"
shopper = "takes"
open_after_s = 1.0
close_after_s = 1.5

[vending]
door_slot = 1
"""


def _write_config(
    workdir: Path, data: Path, host: str, port: int, mqtt5: bool, *, vending: bool = False
) -> Path:
    path = workdir / "edged.toml"
    path.write_text(
        f"""# written by `edged demo`
{VENDING_CONFIG if vending else ""}
[paths]
data_dir = "{data}"

[broker]
mode = "external"
host = "{host}"
port = {port}
protocol = "{"mqtt5" if mqtt5 else "mqtt311"}"

[payments]
query_interval_s = 1

[display]
driver = "sim"
echo = true

[cloud]
mode = "simulated"

[health]
interval_s = 1
""",
        encoding="utf-8",
    )
    return path


async def _echo_display(daemon: asyncio.subprocess.Process) -> None:
    """The simulated display prints each view it shows; show the shopper's screen here."""
    assert daemon.stdout is not None
    last = ""
    while line := await daemon.stdout.readline():
        text = line.decode("utf-8", errors="replace").rstrip()
        if text.startswith("[display] ") and text != last:
            last = text
            print(f"    display │ {text.removeprefix('[display] ')}", flush=True)


async def _call(socket_path: Path, command: str, args: dict[str, Any] | None = None) -> Any:
    from edged.control.client import call

    return await asyncio.to_thread(call, socket_path, command, args)


async def _wait_ready(socket_path: Path, daemon: asyncio.subprocess.Process) -> None:
    from edged.control.client import ControlUnavailable

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if daemon.returncode is not None:
            raise DemoFailed(f"the daemon exited with {daemon.returncode}")
        with contextlib.suppress(ControlUnavailable):
            status = await _call(socket_path, "status")
            if status.get("checkout", {}).get("recovered"):
                return
        await asyncio.sleep(0.1)
    raise DemoFailed("the daemon did not become ready within 20 s")


async def _shopper(socket_path: Path) -> None:
    for code in DEMO_ITEMS:
        print(f"shopper scans {code}")
        await _call(socket_path, "sim.scan", {"code": code})
    masked = DEMO_CODE[:4] + "•" * (len(DEMO_CODE) - 6) + DEMO_CODE[-2:]
    print(f"shopper shows a WeChat Pay code {masked} and confirms on the phone "
          f"after {USER_PAYING_S:.0f} s")  # fmt: skip
    await _call(socket_path, "sim.scan", {"code": DEMO_CODE})


async def _wait_receipt(socket_path: Path, data: Path) -> str:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        status = await _call(socket_path, "status")
        checkout = status.get("checkout", {})
        receipts = sorted((data / "printer").glob("receipt-*.txt"))
        if checkout.get("state") == "idle" and checkout.get("last_paid_sale") and receipts:
            if len(receipts) != 1:
                raise DemoFailed(f"{len(receipts)} receipts printed for one sale")
            last = status.get("payments", {}).get("last") or {}
            if last.get("state") != "paid":
                raise DemoFailed(f"the payment ended {last.get('state')!r}, not paid")
            return receipts[0].read_text(encoding="utf-8")
        await asyncio.sleep(0.2)
    raise DemoFailed(f"no receipt within {DEADLINE_S:.0f} s")


async def _wait_release(socket_path: Path, key: str, value: str) -> dict[str, Any]:
    """Until the newest release (of `key` = sale_id/order_id `value`) has ended; its row."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = await _call(socket_path, "status")
        last = status.get("release", {}).get("last") or {}
        if last.get(key) == value and last.get("ended_at"):
            return dict(last)
        await asyncio.sleep(0.2)
    raise DemoFailed(f"the release for {key} {value} did not end within 30 s")


async def _vending(socket_path: Path, sim: Any) -> None:
    """The paid sale's door, then a mini-program order collected from slot 2 by its code."""
    from edged.contract.bodies import OrderCollect
    from edged.contract.topics import DeviceTopics

    status = await _call(socket_path, "status")
    sale_id = status["checkout"]["last_paid_sale"]
    door = await _wait_release(socket_path, "sale_id", sale_id)
    if door["state"] != "closed":
        raise DemoFailed(f"the door's release ended {door['state']!r}")
    print("door: unlocked once after the PAID commit, opened, closed")
    order = await asyncio.to_thread(
        sim.create_order,
        DeviceTopics("dev-site", "dev-vending"),
        collect=OrderCollect(mode="slot", slot=2, prestocked=True),
    )
    print(f"mini-program: order {order.order_id} placed for slot 2, pickup code {order.code}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = await _call(socket_path, "status")
        if status.get("orders", {}).get("by_state", {}).get("ready"):
            break
        await asyncio.sleep(0.2)
    else:
        raise DemoFailed("the order did not arrive ready within 10 s")
    print(f"shopper types the pickup code {order.code}")
    answer = await _call(socket_path, "order.code", {"code": order.code})
    if not answer["ok"]:
        raise DemoFailed(f"the pickup code was refused: {answer['message']}")
    slot = await _wait_release(socket_path, "order_id", order.order_id)
    if slot["state"] != "closed":
        raise DemoFailed(f"the slot's release ended {slot['state']!r}")
    print("slot 2: unlocked once for the redeemed order, opened, closed")
    again = await _call(socket_path, "order.code", {"code": order.code})
    print(f"the same code again: {again['message']}")


async def _check_cloud(sim: Any) -> None:
    """The backend's view: one trade charged once, and the transaction arrived."""
    deadline = time.monotonic() + 5
    summary = sim.summary()
    while summary["txns"] < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        summary = sim.summary()
    charges = [t["charges"] for t in summary["trades"].values() if t["charges"]]
    if charges != [1]:
        raise DemoFailed(f"the cloud charged {charges} times")
    if summary["txns"] < 1:
        raise DemoFailed("the cloud did not receive the evt/txn message")
    print(f"cloud: charged once; transactions received: {summary['txns']}")
