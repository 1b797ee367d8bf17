"""`edged doctor`: for each device the config expects, is it there, and if not, why not.

A technician at a kiosk needs the fix, not a stack trace: the node is missing (unplugged, wrong
path), the service user may not open it (which group or udev rule grants it), or another
process holds it (CUPS or ipp-usb grabbing the printer, ModemManager probing a serial port).
Permissions are judged for the *service user* (`edged`), not for whoever runs the doctor,
because a technician usually runs it as root, who can open anything.
"""

from __future__ import annotations

import grp
import importlib.util
import os
import pwd
import re
import socket
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hal.config import (
    CameraConfig,
    DisplayConfig,
    EvdevScanner,
    GpioDoorSensor,
    GpioRelease,
    NetworkPrinter,
    NoCamera,
    PiCamera,
    PrinterConfig,
    ReleaseConfig,
    ScannerConfig,
    SerialDisplay,
    SerialPrinter,
    SerialRelease,
    SerialScanner,
    SimRelease,
    UsbPrinter,
    V4l2Camera,
)
from hal.device import DeviceKind

SERVICE_USER = "edged"
UDEV_RULES = "systemd/99-edged.rules (install to /etc/udev/rules.d/, then `udevadm trigger`)"
KNOWN_HOLDERS = {
    "cupsd": "CUPS claims USB printers: remove the printer from CUPS or stop cups",
    "ipp-usb": "ipp-usb claims IPP-over-USB printers: `systemctl disable --now ipp-usb`",
    "ModemManager": "ModemManager probes serial ports: the udev rule sets ID_MM_DEVICE_IGNORE",
    "brltty": "brltty grabs USB-serial adapters: `apt remove brltty`",
}


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: int
    gids: frozenset[int]

    @classmethod
    def lookup(cls, name: str = SERVICE_USER) -> UserInfo | None:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        gids = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}
        return cls(name, entry.pw_uid, frozenset(gids))


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str


@dataclass
class Finding:
    kind: DeviceKind
    driver: str
    target: str
    """What the config points at: a node, a vendor:product, a host:port."""
    present: bool
    ok: bool
    problems: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class System:
    """Where the doctor looks; tests point it at a fake sysfs and their own processes."""

    sys_root: Path = Path("/sys")
    proc_root: Path = Path("/proc")
    dev_root: Path = Path("/dev")


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def may_open(path: str, user: UserInfo, write: bool) -> bool:
    st = os.stat(path)
    need = (
        stat.S_IRUSR | (stat.S_IWUSR if write else 0),
        stat.S_IRGRP | (stat.S_IWGRP if write else 0),
        stat.S_IROTH | (stat.S_IWOTH if write else 0),
    )
    if user.uid == 0:
        return True
    if st.st_uid == user.uid:
        return st.st_mode & need[0] == need[0]
    if st.st_gid in user.gids:
        return st.st_mode & need[1] == need[1]
    return st.st_mode & need[2] == need[2]


def holders(path: str, system: System) -> list[Holder]:
    """Processes with the node open, from /proc/*/fd (only those we may look into)."""
    target = os.path.realpath(path)
    found = []
    for proc in system.proc_root.iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == target:
                    command = (proc / "comm").read_text().strip()
                    found.append(Holder(int(proc.name), command))
                    break
            except OSError:
                continue
    return found


def check_node(
    finding: Finding, path: str, user: UserInfo | None, system: System, write: bool = True
) -> None:
    """Exists, may be opened by the service user, and who else has it open."""
    if not os.path.exists(path):
        finding.present = False
        finding.ok = False
        finding.problems.append(f"{path} does not exist")
        finding.fixes.append(
            "plug the device in and check the cable; for a stable name install " + UDEV_RULES
        )
        return
    real = os.path.realpath(path)
    if real != path:
        finding.notes.append(f"{path} -> {real}")
    if user is None:
        finding.notes.append(f"service user {SERVICE_USER!r} does not exist; permissions unchecked")
    elif not may_open(real, user, write):
        st = os.stat(real)
        group = _group_name(st.st_gid)
        finding.ok = False
        finding.problems.append(
            f"user {user.name!r} may not open {real} "
            f"(owner {st.st_uid}, group {group}, mode {stat.S_IMODE(st.st_mode):o})"
        )
        if st.st_mode & stat.S_IRWXG:
            finding.fixes.append(f"`usermod -aG {group} {user.name}` or install {UDEV_RULES}")
        else:
            finding.fixes.append(f"install {UDEV_RULES}")
    for holder in holders(real, system):
        hint = KNOWN_HOLDERS.get(holder.command)
        if hint:
            finding.ok = False
            finding.problems.append(f"held by {holder.command} (pid {holder.pid})")
            finding.fixes.append(hint)
        else:
            finding.notes.append(f"open in {holder.command} (pid {holder.pid})")


# -- per kind ------------------------------------------------------------------------------


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _sim(kind: DeviceKind) -> Finding:
    return Finding(kind, "sim", "simulated", present=True, ok=True)


def _input_nodes(selector: str, system: System) -> list[str]:
    """/dev/input/eventN nodes whose name or vendor:product matches, from sysfs."""
    vid_pid = re.fullmatch(r"([0-9a-fA-F]{4}):([0-9a-fA-F]{4})", selector)
    out: list[str] = []
    base = system.sys_root / "class" / "input"
    if not base.is_dir():
        return out
    for event in sorted(base.glob("event*")):
        device = event / "device"
        try:
            if vid_pid:
                vendor = (device / "id" / "vendor").read_text().strip().lower()
                product = (device / "id" / "product").read_text().strip().lower()
                match = (vendor, product) == (vid_pid.group(1).lower(), vid_pid.group(2).lower())
            else:
                match = (device / "name").read_text().strip() == selector
        except OSError:
            continue
        if match:
            out.append(str(system.dev_root / "input" / event.name))
    return out


def diagnose_scanner(config: ScannerConfig, user: UserInfo | None, system: System) -> Finding:
    kind = DeviceKind.SCANNER
    if isinstance(config, SerialScanner):
        finding = Finding(kind, "serial", config.port, present=True, ok=True)
        check_node(finding, config.port, user, system)
        return finding
    if isinstance(config, EvdevScanner):
        finding = Finding(kind, "evdev", config.device, present=True, ok=True)
        if not _installed("evdev"):
            finding.ok = False
            finding.problems.append("python package 'evdev' is not installed")
            finding.fixes.append("pip install 'edged[hid]'")
        if config.device.startswith("/"):
            check_node(finding, config.device, user, system, write=False)
            return finding
        nodes = _input_nodes(config.device, system)
        if not nodes:
            finding.present = finding.ok = False
            finding.problems.append(f"no input device matches {config.device!r}")
            finding.fixes.append("plug the scanner in; `ls -l /dev/input/by-id/` lists names")
            return finding
        check_node(finding, nodes[0], user, system, write=False)
        return finding
    return _sim(kind)


def _usb_device(vendor: int, product: int, system: System) -> Path | None:
    base = system.sys_root / "bus" / "usb" / "devices"
    if not base.is_dir():
        return None
    for device in sorted(base.iterdir()):
        try:
            vid = int((device / "idVendor").read_text(), 16)
            pid = int((device / "idProduct").read_text(), 16)
        except (OSError, ValueError):
            continue
        if (vid, pid) == (vendor, product):
            return device
    return None


def _tcp_reachable(host: str, port: int, timeout_s: float) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def diagnose_printer(config: PrinterConfig, user: UserInfo | None, system: System) -> Finding:
    kind = DeviceKind.PRINTER
    if isinstance(config, SerialPrinter):
        finding = Finding(kind, "serial", config.port, present=True, ok=True)
        check_node(finding, config.port, user, system)
        return finding
    if isinstance(config, NetworkPrinter):
        target = f"{config.host}:{config.port}"
        finding = Finding(kind, "network", target, present=True, ok=True)
        error = _tcp_reachable(config.host, config.port, min(config.timeout_s, 2.0))
        if error:
            finding.present = finding.ok = False
            finding.problems.append(f"cannot connect to {target}: {error}")
            finding.fixes.append("check the printer is on, its IP address and the network cable")
        return finding
    if isinstance(config, UsbPrinter):
        target = f"{config.vendor_id:04x}:{config.product_id:04x}"
        finding = Finding(kind, "usb", target, present=True, ok=True)
        if not _installed("usb"):
            finding.ok = False
            finding.problems.append("python package 'pyusb' is not installed")
            finding.fixes.append("pip install 'edged[usb]'")
        device = _usb_device(config.vendor_id, config.product_id, system)
        if device is None:
            finding.present = finding.ok = False
            finding.problems.append(f"no USB device {target}")
            finding.fixes.append("plug the printer in and switch it on; `lsusb` lists devices")
            return finding
        try:
            bus = int((device / "busnum").read_text())
            dev = int((device / "devnum").read_text())
        except (OSError, ValueError):
            finding.notes.append(f"cannot read bus/device numbers of {device.name}")
            return finding
        node = str(system.dev_root / "bus" / "usb" / f"{bus:03d}" / f"{dev:03d}")
        check_node(finding, node, user, system)
        for interface in device.glob(f"{device.name}:*"):
            driver = interface / "driver"
            if driver.is_symlink() and os.path.basename(os.readlink(driver)) == "usblp":
                finding.notes.append(
                    "kernel driver usblp is bound; python-escpos detaches it, or blacklist usblp"
                )
                lp_nodes = sorted((system.dev_root / "usb").glob("lp*"))
                for lp in lp_nodes:
                    for holder in holders(str(lp), system):
                        finding.ok = False
                        finding.problems.append(f"{lp} held by {holder.command} (pid {holder.pid})")
                        finding.fixes.append(
                            KNOWN_HOLDERS.get(holder.command, f"stop {holder.command}")
                        )
        return finding
    return _sim(kind)


def diagnose_camera(config: CameraConfig, user: UserInfo | None, system: System) -> Finding | None:
    kind = DeviceKind.CAMERA
    if isinstance(config, NoCamera):
        return None
    if isinstance(config, V4l2Camera):
        finding = Finding(kind, "v4l2", config.device, present=True, ok=True)
        check_node(finding, config.device, user, system)
        if not _installed("cv2"):
            finding.ok = False
            finding.problems.append("python package 'opencv-python-headless' is not installed")
            finding.fixes.append("pip install opencv-python-headless")
        return finding
    if isinstance(config, PiCamera):
        finding = Finding(kind, "picamera2", "libcamera", present=True, ok=True)
        if not _installed("picamera2"):
            finding.ok = False
            finding.problems.append("python package 'picamera2' is not installed")
            finding.fixes.append("apt install python3-picamera2 (use a venv with system packages)")
        media = sorted(system.dev_root.glob("media*"))
        if not media:
            finding.present = finding.ok = False
            finding.problems.append("no /dev/media* node: no camera detected by libcamera")
            finding.fixes.append("check the ribbon cable and camera_auto_detect=1 in config.txt")
        else:
            check_node(finding, str(media[0]), user, system)
        return finding
    finding = _sim(kind)
    if config.image_dir is not None and not config.image_dir.is_dir():
        finding.ok = False
        finding.problems.append(f"image folder {config.image_dir} does not exist")
        finding.fixes.append(f"mkdir -p {config.image_dir}")
    return finding


def diagnose_display(config: DisplayConfig, user: UserInfo | None, system: System) -> Finding:
    if isinstance(config, SerialDisplay):
        finding = Finding(DeviceKind.DISPLAY, "serial", config.port, present=True, ok=True)
        check_node(finding, config.port, user, system)
        return finding
    return _sim(DeviceKind.DISPLAY)


def _check_gpiod(finding: Finding) -> None:
    if not _installed("gpiod"):
        finding.ok = False
        finding.problems.append("python package 'gpiod' (libgpiod v2 bindings) is not installed")
        finding.fixes.append("pip install 'edged[gpio]'")


def diagnose_release(
    config: ReleaseConfig, user: UserInfo | None, system: System
) -> Finding | None:
    """The door or slot locks: the relay's node, and the door switches' GPIO chip."""
    kind = DeviceKind.RELEASE
    if isinstance(config, SerialRelease):
        finding = Finding(kind, "serial", config.port, present=True, ok=True)
        check_node(finding, config.port, user, system)
        finding.notes.append(f"relay channels {list(config.channels)} for slots 1-{config.slots}")
    elif isinstance(config, GpioRelease):
        target = f"{config.chip} lines {list(config.relay_lines)}"
        finding = Finding(kind, "gpio", target, present=True, ok=True)
        _check_gpiod(finding)
        check_node(finding, config.chip, user, system)
    elif isinstance(config, SimRelease):
        finding = _sim(kind)
    else:
        return None
    sensor = config.sensor
    if isinstance(sensor, GpioDoorSensor):
        finding.notes.append(f"door switches: {sensor.chip} lines {list(sensor.lines)}")
        if not isinstance(config, GpioRelease):
            _check_gpiod(finding)
        if not (isinstance(config, GpioRelease) and config.chip == sensor.chip):
            check_node(finding, sensor.chip, user, system)
    elif sensor.driver == "none":
        finding.notes.append(
            "no door sensor: a release cannot tell opened from not opened (ends 'unlocked')"
        )
    return finding


def diagnose(
    scanner_cfg: ScannerConfig,
    camera_cfg: CameraConfig,
    printer_cfg: PrinterConfig,
    display_cfg: DisplayConfig,
    user: UserInfo | None = None,
    system: System | None = None,
    release_cfg: ReleaseConfig | None = None,
) -> list[Finding]:
    system = system or System()
    user = user if user is not None else UserInfo.lookup()
    findings = [
        diagnose_scanner(scanner_cfg, user, system),
        diagnose_camera(camera_cfg, user, system),
        diagnose_printer(printer_cfg, user, system),
        diagnose_display(display_cfg, user, system),
        None if release_cfg is None else diagnose_release(release_cfg, user, system),
    ]
    return [f for f in findings if f is not None]


def format_findings(findings: Iterable[Finding]) -> str:
    lines = []
    for f in findings:
        verdict = "ok" if f.ok else ("MISSING" if not f.present else "PROBLEM")
        lines.append(f"{f.kind.value:<8} {f.driver:<10} {f.target:<32} {verdict}")
        lines.extend(f"    problem: {p}" for p in f.problems)
        lines.extend(f"    fix:     {x}" for x in dict.fromkeys(f.fixes))
        lines.extend(f"    note:    {n}" for n in f.notes)
    return "\n".join(lines)
