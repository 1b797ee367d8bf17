"""What a valid config still needs to work on this machine: its files, keys and broker.

`check-config` and `edged run` both call `usability_problems` after the models accepted the
config, so a missing TLS file, an unreadable key, a certificate that does not parse or a key
that does not match its certificate stops the daemon before READY, with the key that names
the file, instead of a bare FileNotFoundError in the link task and a restart loop.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Callable
from pathlib import Path

from edged.config.models import DaemonConfig, TlsFiles
from edged.config.problems import Problem
from edged.runtime.dev_broker import choose_server, missing_server_reason

Readable = Callable[[Path], bool]


def usability_problems(config: DaemonConfig, *, user: str | None = None) -> list[Problem]:
    """Everything that would fail at run time; `user` is the service user the daemon runs
    as (files must be readable by it), or None for the user running this check."""
    readable = _readable_by(user)
    problems: list[Problem] = []
    broker = config.broker
    if broker.tls is not None:
        problems += _tls_problems(broker.tls, readable, user)
    if broker.mode == "embedded":
        server = choose_server(broker.embedded_server)
        if server is None:
            problems.append(
                Problem(
                    "broker.mode",
                    '"embedded" needs a development broker, but '
                    f"{missing_server_reason(broker.embedded_server)}",
                )
            )
        elif server == "amqtt" and broker.protocol == "mqtt5":
            problems.append(
                Problem(
                    "broker.protocol",
                    '"mqtt5" with the embedded broker needs Mosquitto, which is not installed '
                    "(the fallback, amqtt, speaks MQTT 3.1.1 only): install mosquitto, or set "
                    'protocol = "mqtt311", or leave protocol out',
                )
            )
    screen_tls = config.screen.tls if config.screen.enabled else None
    if screen_tls is not None:
        problems += _file_problems("screen.tls.cert_file", screen_tls.cert_file, readable, user)
        key_problems = _file_problems("screen.tls.key_file", screen_tls.key_file, readable, user)
        problems += key_problems or _private_problems("screen.tls.key_file", screen_tls.key_file)
    for key, path in _other_files(config):
        problems += _file_problems(key, path, readable, user)
    return problems


def _other_files(config: DaemonConfig) -> list[tuple[str, Path]]:
    files: list[tuple[str, Path]] = []
    if config.checkout.catalog_seed is not None:
        files.append(("checkout.catalog_seed", config.checkout.catalog_seed))
    script = getattr(config.scanner, "script_file", None)
    if isinstance(script, Path):
        files.append(("scanner.script_file", script))
    return files


def _tls_problems(tls: TlsFiles, readable: Readable, user: str | None) -> list[Problem]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    problems = _file_problems("broker.tls.ca_file", tls.ca_file, readable, user)
    if not problems:
        try:
            x509.load_pem_x509_certificates(tls.ca_file.read_bytes())
        except (ValueError, OSError) as exc:
            problems.append(
                Problem("broker.tls.ca_file", f"{tls.ca_file} is not a PEM certificate: {exc}")
            )
    if tls.key_file is not None and tls.cert_file is None:
        problems.append(
            Problem("broker.tls.cert_file", "key_file is set, so cert_file is required too")
        )
    if tls.cert_file is None:
        return problems
    cert_problems = _file_problems("broker.tls.cert_file", tls.cert_file, readable, user)
    key_path = tls.key_file or tls.cert_file
    key_key = "broker.tls.key_file" if tls.key_file else "broker.tls.cert_file"
    if tls.key_file is not None:
        cert_problems += _file_problems(key_key, key_path, readable, user)
        cert_problems += _private_problems(key_key, key_path)
    problems += cert_problems
    if cert_problems:
        return problems
    try:
        cert = x509.load_pem_x509_certificate(tls.cert_file.read_bytes())
    except ValueError as exc:
        return [
            *problems,
            Problem("broker.tls.cert_file", f"{tls.cert_file} is not a PEM certificate: {exc}"),
        ]
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        what = "has no unencrypted PEM private key"
        hint = "" if tls.key_file else " (set key_file when the key is in its own file)"
        return [*problems, Problem(key_key, f"{key_path} {what}: {exc}{hint}")]
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != cert.public_key().public_bytes(der, spki):
        problems.append(
            Problem(key_key, f"{key_path} does not match the certificate in {tls.cert_file}")
        )
    return problems


def _file_problems(key: str, path: Path, readable: Readable, user: str | None) -> list[Problem]:
    by = f" by the service user {user!r}" if user else ""
    if not path.exists():
        return [Problem(key, f"{path} does not exist")]
    if not path.is_file():
        return [Problem(key, f"{path} is not a file")]
    if not readable(path):
        return [Problem(key, f"{path} is not readable{by}")]
    return []


def _private_problems(key: str, path: Path) -> list[Problem]:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return [
            Problem(
                key,
                f"{path} is readable by others (mode {mode:04o}): a private key must be "
                "0600, owned by the service user (chmod 600)",
            )
        ]
    return []


def _readable_by(user: str | None) -> Readable:
    if user is None:
        return lambda path: os.access(path, os.R_OK)
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return lambda path: False
    groups = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}

    def allowed(path: Path, bits: tuple[int, int, int]) -> bool:
        st = path.stat()
        if entry.pw_uid == 0:
            return True
        if st.st_uid == entry.pw_uid:
            return bool(st.st_mode & bits[0])
        if st.st_gid in groups:
            return bool(st.st_mode & bits[1])
        return bool(st.st_mode & bits[2])

    def readable(path: Path) -> bool:
        try:
            path = path.resolve()
            folders_ok = all(
                allowed(p, (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)) for p in path.parents
            )
            return folders_ok and allowed(path, (stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH))
        except OSError:
            return False

    return readable


def start_notes(config: DaemonConfig) -> list[str]:
    """Combinations that work but need something outside the daemon: said at start."""
    notes: list[str] = []
    if config.cloud.mode == "simulated" and config.broker.mode == "external":
        notes.append(
            'cloud.mode = "simulated" with an external broker: this daemon runs no simulated '
            f"backend; it expects `edged cloudsim` (or a real backend) on "
            f"{config.broker.host}:{config.broker.port}; without one a payment gets no answer "
            f"and is reversed after payments.deadline_s ({config.payments.deadline_s:g} s), "
            "and no goods are released"
        )
    return notes
