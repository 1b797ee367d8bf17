"""`edged identity create|show`: the device's Ed25519 identity key, made at provisioning."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from edged.cli.common import EXIT_CONFIG, add_config_option, load_or_report
from edged.services.settlement.identity import (
    IdentityError,
    create_identity,
    identity_public_b64,
    load_identity,
)


def register(commands: Any) -> None:
    identity: argparse.ArgumentParser = commands.add_parser(
        "identity", help="the device's identity key that signs its daily settlement"
    )
    actions = identity.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", help="make the key (never replaces one); print its public key"
    )
    show = actions.add_parser("show", help="print the public key to register with the backend")
    for sub, handler in ((create, _create), (show, _show)):
        sub.add_argument(
            "--key", type=Path, default=None, help="key file (default: from the config)"
        )
        add_config_option(sub)
        sub.set_defaults(handler=handler)


def _path(args: argparse.Namespace) -> Path | None:
    if args.key is not None:
        return Path(args.key)
    config = load_or_report(args.config)
    if config is None:
        return None
    return config.settlement.identity_key or config.paths.data_dir / "identity.key"


def _create(args: argparse.Namespace) -> int:
    path = _path(args)
    if path is None:
        return EXIT_CONFIG
    try:
        key = create_identity(path)
    except (IdentityError, OSError) as exc:
        print(f"edged: {exc}", file=sys.stderr)
        return 1
    print(identity_public_b64(key))
    return 0


def _show(args: argparse.Namespace) -> int:
    path = _path(args)
    if path is None:
        return EXIT_CONFIG
    try:
        print(identity_public_b64(load_identity(path)))
    except IdentityError as exc:
        print(f"edged: {exc}", file=sys.stderr)
        return 1
    return 0
