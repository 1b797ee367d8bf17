"""The simulated backend's keys: one 0600 file, generated once, shared with the daemon.

With `cloud.mode = "simulated"` (the development default) the keys are generated once into
`<data_dir>/cloudsim/`, and the daemon trusts this signing key and seals payment codes to
this X25519 key, so a fresh clone pays end to end with no key handling. With `remote` nothing
is invented: the keys come from `security.trusted_keys` and `security.backend_seal_key`.

Both private keys live in one file written atomically (link, never replace), so a daemon and
a simulator starting at the same moment end up with the same pair.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edged.config.models import DaemonConfig
from edged.contract.signing import b64, unb64

KEY_FILE = "backend-keys.json"
PUBLIC_FILE = "backend-public.json"
SIM_KEYS_DIR = "cloudsim"


@dataclass(frozen=True)
class BackendKeys:
    signing: Ed25519PrivateKey
    seal: X25519PrivateKey

    @property
    def signing_public_b64(self) -> str:
        return b64(self.signing.public_key().public_bytes_raw())

    @property
    def seal_public_b64(self) -> str:
        return b64(self.seal.public_key().public_bytes_raw())


def ensure_keys(folder: Path) -> BackendKeys:
    """Load the keys from `folder`, generating them first when there are none."""
    path = folder / KEY_FILE
    if not path.exists():
        _generate(folder, path)
    return load_keys(path)


def load_keys(path: Path) -> BackendKeys:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return BackendKeys(
            signing=Ed25519PrivateKey.from_private_bytes(unb64(data["signing_ed25519"])),
            seal=X25519PrivateKey.from_private_bytes(unb64(data["seal_x25519"])),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a usable backend key file ({type(exc).__name__})") from None


def _generate(folder: Path, path: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    keys = BackendKeys(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    secret = {
        "signing_ed25519": b64(keys.signing.private_bytes_raw()),
        "seal_x25519": b64(keys.seal.private_bytes_raw()),
    }
    public = {"signing_ed25519": keys.signing_public_b64, "seal_x25519": keys.seal_public_b64}
    temp = folder / f".{KEY_FILE}.{os.getpid()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(secret, handle)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temp, path)  # fails if another process won the race: keep theirs
    except FileExistsError:
        pass
    finally:
        temp.unlink()
    if json.loads(path.read_text(encoding="utf-8")) == secret:
        public_path = folder / PUBLIC_FILE
        fd = os.open(public_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(public, handle, indent=2)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)


def simulated_keys_dir(config: DaemonConfig) -> Path:
    return config.paths.data_dir / SIM_KEYS_DIR


def with_backend_keys(config: DaemonConfig) -> DaemonConfig:
    """The config the daemon runs with: in simulated mode, the simulator's keys added."""
    if config.cloud.mode != "simulated":
        return config
    try:
        keys = ensure_keys(simulated_keys_dir(config))
    except ValueError as exc:  # a damaged key file: the daemon's "cannot start" path
        raise OSError(str(exc)) from None
    security = config.security
    trusted = list(security.trusted_keys)
    if keys.signing_public_b64 not in trusted:
        trusted.append(keys.signing_public_b64)
    seal = security.backend_seal_key or keys.seal_public_b64
    return config.model_copy(
        update={
            "security": security.model_copy(
                update={"trusted_keys": trusted, "backend_seal_key": seal}
            )
        }
    )
