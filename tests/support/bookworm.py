"""A Debian Bookworm root for installer tests: debootstrapped once, cached, used through an
overlay so every test starts from the same pristine root and leaves it untouched.

The root is what a Raspberry Pi OS Lite image starts with that matters here (python3,
ca-certificates, passwd, systemd, udev). Only the Raspberry Pi archive's packages are
stubbed, because they cannot exist on Debian: python3-picamera2 and python3-libcamera
come from a local file: apt repository whose picamera2 follows the library's documented
API. systemctl and udevadm are stubs that record their calls, as no init system runs in a chroot.

The cache lives outside the repository (EDGED_TEST_CACHE, default /var/cache/edged-tests),
keyed by a hash of the package list; apt's archives and lists and pip's cache are kept there
too, so a later run downloads almost nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import ssl
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "ca-certificates", "passwd", "systemd", "udev")
CACHE = Path(os.environ.get("EDGED_TEST_CACHE", "/var/cache/edged-tests"))
HOST_CA = "/etc/ssl/host-ca-bundle.pem"
"""The host's CA bundle, for pip inside the root (the network path is the host's)."""
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

PICAMERA2 = '''"""Stub of Raspberry Pi's picamera2 for installer tests (its documented API)."""

import numpy

__version__ = "0.3.17"


class Picamera2:
    def __init__(self, camera_num=0):
        self.started = False

    def create_video_configuration(self, main=None, lores=None, controls=None):
        return {"main": main or {}, "lores": lores or {}, "controls": controls or {}}

    def configure(self, config):
        self.config = config

    def start(self):
        self.started = True

    def capture_array(self, name="main"):
        width, height = self.config[name].get("size", (640, 480))
        return numpy.zeros((height * 3 // 2, width), dtype=numpy.uint8)

    def stop(self):
        self.started = False

    def close(self):
        self.started = False
'''

STUB = '#!/bin/sh\necho "$(basename "$0") $*" >> /var/log/edged-test-stubs.log\n'


@dataclass(frozen=True)
class Timing:
    created: bool
    seconds: float


def root_key() -> str:
    return hashlib.sha256(f"{SUITE} minbase {','.join(PACKAGES)}".encode()).hexdigest()[:12]


def pristine_root() -> tuple[Path, Timing]:
    """The cached root, debootstrapped when missing (under a lock: suites may run at once)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    root = CACHE / f"{SUITE}-{root_key()}"
    started = time.monotonic()
    with (CACHE / "bootstrap.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / ".complete").exists():
            return root, Timing(False, time.monotonic() - started)
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        if shutil.which("debootstrap") is None:
            raise RuntimeError("debootstrap is missing: run scripts/system-packages.sh")
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
             SUITE, str(partial), MIRROR],
            check=True, capture_output=True, timeout=900,
        )  # fmt: skip
        (partial / ".complete").touch()
        partial.rename(root)
    return root, Timing(True, time.monotonic() - started)


def _deb(folder: Path, name: str, depends: str, files: dict[str, str]) -> Path:
    tree = folder / f"{name}-tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 0.3.17-1~stub\nArchitecture: all\n"
        f"Maintainer: edged tests <tests@invalid>\nDepends: {depends}\n"
        f"Description: test stub of the Raspberry Pi archive's {name}\n",
        encoding="utf-8",
    )
    for path, text in files.items():
        target = tree / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    deb = folder / f"{name}_0.3.17-1~stub_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)],
                   check=True, capture_output=True)  # fmt: skip
    shutil.rmtree(tree)
    return deb


def _pi_archive(folder: Path) -> None:
    """A flat file: repository with the two Raspberry Pi archive packages, stubbed."""
    folder.mkdir(parents=True)
    site = "/usr/lib/python3/dist-packages"
    debs = [
        _deb(folder, "python3-libcamera", "python3", {f"{site}/libcamera/__init__.py": ""}),
        _deb(
            folder,
            "python3-picamera2",
            "python3, python3-numpy, python3-libcamera",
            {f"{site}/picamera2/__init__.py": PICAMERA2},
        ),
    ]
    stanzas = []
    for deb in debs:
        control = subprocess.run(["dpkg-deb", "-f", str(deb)], check=True, capture_output=True,
                                 text=True).stdout.strip()  # fmt: skip
        data = deb.read_bytes()
        stanzas.append(
            f"{control}\nFilename: ./{deb.name}\nSize: {len(data)}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
        )
    (folder / "Packages").write_text("\n".join(stanzas), encoding="utf-8")


@dataclass
class Chroot:
    path: Path
    log: Path

    def run(self, *command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        env = {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8", "PIP_NO_INPUT": "1",
               "PIP_CERT": HOST_CA}  # fmt: skip
        return subprocess.run(
            ["chroot", str(self.path), *command], capture_output=True, text=True,
            timeout=timeout, env=env,
        )  # fmt: skip

    def stub_calls(self) -> list[str]:
        log = self.path / "var/log/edged-test-stubs.log"
        return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


@contextlib.contextmanager
def bookworm_chroot(workdir: Path, source: Path) -> Iterator[Chroot]:
    """A writable Bookworm root (overlay over the cached one) with `source` at /opt/edged-src."""
    root, _ = pristine_root()
    upper, work, merged = workdir / "upper", workdir / "work", workdir / "root"
    for folder in (upper, work, merged):
        folder.mkdir(parents=True)
    caches = {
        "var/cache/apt/archives": CACHE / "apt-archives",
        "var/lib/apt/lists": CACHE / "apt-lists",
        "root/.cache/pip": CACHE / "pip",
    }
    mounts: list[Path] = []

    def mount(*args: str, target: Path) -> None:
        subprocess.run(["mount", *args, str(target)], check=True, capture_output=True)
        mounts.append(target)

    try:
        mount("-t", "overlay", "overlay", "-o",
              f"lowerdir={root},upperdir={upper},workdir={work}", target=merged)  # fmt: skip
        mount("-t", "proc", "proc", target=merged / "proc")
        # No bind of the host's /dev: debootstrap made the few nodes a chroot needs (null,
        # zero, urandom, tty), and a leaked bind under a folder pytest later deletes would
        # take the host's device nodes with it.
        for inside, outside in caches.items():
            (outside / "partial").mkdir(parents=True, exist_ok=True)
            (merged / inside).mkdir(parents=True, exist_ok=True)
            mount("--bind", str(outside), target=merged / inside)
        shutil.copy("/etc/resolv.conf", merged / "etc/resolv.conf")
        # This machine reaches PyPI through a proxy whose CA only the host trusts.
        shutil.copy(
            ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt",
            merged / HOST_CA.lstrip("/"),
        )
        for tool in ("systemctl", "udevadm"):
            stub = merged / "usr/local/sbin" / tool
            stub.write_text(STUB, encoding="utf-8")
            stub.chmod(0o755)
        policy = merged / "usr/sbin/policy-rc.d"  # no service starts inside a chroot
        policy.write_text("#!/bin/sh\nexit 101\n", encoding="utf-8")
        policy.chmod(0o755)
        _pi_archive(merged / "opt/pi-archive")
        (merged / "etc/apt/sources.list.d/raspberrypi-stub.list").write_text(
            "deb [trusted=yes] file:/opt/pi-archive ./\n", encoding="utf-8"
        )
        listed = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard"], cwd=source,
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        files = listed.stdout.split()
        with tarfile.open(workdir / "src.tar", "w") as tar:
            for name in files:
                if (source / name).is_file():
                    tar.add(source / name, arcname=name)
        (merged / "opt/edged-src").mkdir(parents=True)
        with tarfile.open(workdir / "src.tar") as tar:
            tar.extractall(merged / "opt/edged-src", filter="tar")
        yield Chroot(merged, workdir / "install.log")
    finally:
        for target in reversed(mounts):
            if subprocess.run(["umount", str(target)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(target)], capture_output=True)
        still = [m for m in mounts if str(m) in Path("/proc/self/mounts").read_text()]
        if still:  # never leave the caches bound under a folder pytest will delete
            raise RuntimeError(f"could not unmount {still}")
