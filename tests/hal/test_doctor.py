"""`edged doctor`: each configured device, present or not, and the fix."""

from __future__ import annotations

import os
from pathlib import Path

from hal.config import (
    EvdevScanner,
    NetworkPrinter,
    NoCamera,
    SerialDisplay,
    SerialScanner,
    SimDisplay,
    SimPrinter,
    SimScanner,
    UsbPrinter,
)
from hal.doctor import System, UserInfo, diagnose, format_findings

EDGED = UserInfo("edged", uid=54321, gids=frozenset({54321}))


def fake_system(tmp_path: Path) -> System:
    sys_root, dev = tmp_path / "sys", tmp_path / "dev"
    event = sys_root / "class" / "input" / "event7" / "device"
    (event / "id").mkdir(parents=True)
    (event / "name").write_text("Honeywell Scanner\n")
    (event / "id" / "vendor").write_text("0c2e\n")
    (event / "id" / "product").write_text("0b61\n")
    (dev / "input").mkdir(parents=True)
    node = dev / "input" / "event7"
    node.write_text("")
    node.chmod(0o660)
    usb = sys_root / "bus" / "usb" / "devices" / "1-1.3"
    usb.mkdir(parents=True)
    (usb / "idVendor").write_text("0416\n")
    (usb / "idProduct").write_text("5011\n")
    (usb / "busnum").write_text("1\n")
    (usb / "devnum").write_text("5\n")
    (dev / "bus" / "usb" / "001").mkdir(parents=True)
    (dev / "bus" / "usb" / "001" / "005").write_text("")
    (dev / "bus" / "usb" / "001" / "005").chmod(0o664)
    return System(sys_root=sys_root, proc_root=Path("/proc"), dev_root=dev)


def test_missing_serial_port_and_absent_usb_printer(tmp_path: Path) -> None:
    findings = diagnose(
        SerialScanner(driver="serial", port=str(tmp_path / "ttyUSB9")),
        NoCamera(driver="none"),
        UsbPrinter(driver="usb", vendor_id="04b8", product_id="0202"),
        SimDisplay(),
        user=EDGED,
        system=fake_system(tmp_path),
    )
    scanner, printer, display = findings
    assert not scanner.present and f"{tmp_path}/ttyUSB9 does not exist" in scanner.problems[0]
    assert "99-edged.rules" in scanner.fixes[0]
    assert not printer.present and printer.problems[-1] == "no USB device 04b8:0202"
    assert display.ok
    report = format_findings(findings)
    assert "scanner  serial" in report and "MISSING" in report and "fix:" in report


def test_permission_problem_names_the_group_or_rule(tmp_path: Path) -> None:
    system = fake_system(tmp_path)
    findings = diagnose(
        EvdevScanner(driver="evdev", device="0c2e:0b61"),
        NoCamera(driver="none"),
        UsbPrinter(driver="usb", vendor_id="0416", product_id="5011"),
        SimDisplay(),
        user=EDGED,
        system=system,
    )
    scanner, printer = findings[0], findings[1]
    assert scanner.present and not scanner.ok
    assert any("may not open" in p and "event7" in p for p in scanner.problems)
    assert any("usermod -aG" in f and "edged" in f for f in scanner.fixes)
    assert printer.present and any("001/005" in p for p in printer.problems)
    assert any("99-edged.rules" in f for f in printer.fixes)


def test_device_held_by_another_process_is_named(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        port = os.ttyname(slave)
        me = UserInfo("edged", uid=os.getuid(), gids=frozenset(os.getgroups()))
        (finding,) = [
            f
            for f in diagnose(
                SimScanner(),
                NoCamera(driver="none"),
                SimPrinter(),
                SerialDisplay(driver="serial", port=port),
                user=me,
            )
            if f.driver == "serial"
        ]
        assert finding.present
        assert any(f"(pid {os.getpid()})" in n for n in finding.notes)
    finally:
        os.close(master)
        os.close(slave)


def test_unreachable_network_printer(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (printer,) = [
        f
        for f in diagnose(
            SimScanner(),
            NoCamera(driver="none"),
            NetworkPrinter(driver="network", host="127.0.0.1", port=port),
            SimDisplay(),
            user=EDGED,
        )
        if f.driver == "network"
    ]
    assert not printer.present and "cannot connect" in printer.problems[0]
