"""The device's own Ed25519 identity key: made at provisioning, it signs the settlement.

`firmware-tools/make-identity.sh` (which runs `edged identity create`) writes it 0600 as
PKCS#8 PEM and prints the public key for registration with the backend. A development
daemon with no key makes one on first use in its data folder.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edged.contract.signing import public_key_b64


class IdentityError(ValueError):
    """The identity key file cannot be used; the message says which file and why."""


def create_identity(path: Path) -> Ed25519PrivateKey:
    """Write a new key to `path` (never replacing one); returns it."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temp, path)  # fails if the file exists: an identity is never replaced
    except FileExistsError:
        raise IdentityError(
            f"{path}: an identity key already exists; it is never replaced"
        ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return key


def load_identity(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise IdentityError(f"{path}: not a usable identity key ({type(exc).__name__})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"{path}: the identity key must be Ed25519")
    return key


def load_or_create_identity(path: Path) -> Ed25519PrivateKey:
    if path.exists():
        return load_identity(path)
    try:
        return create_identity(path)
    except IdentityError:
        return load_identity(path)  # another process made it a moment ago


def identity_public_b64(key: Ed25519PrivateKey) -> str:
    return public_key_b64(key)
