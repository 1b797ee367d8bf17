"""The one door to python-escpos.

python-escpos 3.1 parses its 400 kB capabilities file with pure-Python YAML on every import
(half a second here, several on a Pi) unless it may keep a pickle in
`ESCPOS_CAPABILITIES_PICKLE_DIR`; by default it picks a fresh temporary folder each time.
We give it a private cache folder. The folder must be ours and not writable by others,
because the cache is a pickle: whoever can write it can run code in the daemon.
"""

from __future__ import annotations

import importlib
import os
import stat
from pathlib import Path
from types import ModuleType

PICKLE_DIR_ENV = "ESCPOS_CAPABILITIES_PICKLE_DIR"


def escpos_printers() -> ModuleType:
    """`escpos.printer`, imported with a private capabilities cache."""
    if PICKLE_DIR_ENV not in os.environ:
        cache = private_cache_dir()
        if cache is not None:
            os.environ[PICKLE_DIR_ENV] = str(cache)
    return importlib.import_module("escpos.printer")


def private_cache_dir(environ: dict[str, str] | None = None) -> Path | None:
    """systemd's CacheDirectory, else the XDG cache; None when no safe folder can be had."""
    env = dict(os.environ) if environ is None else environ
    base = env.get("CACHE_DIRECTORY", "").split(":")[0] or env.get("XDG_CACHE_HOME", "")
    root = Path(base) if base else Path.home() / ".cache"
    folder = root / "edged" / "escpos"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = folder.stat()
    except OSError:
        return None
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None
    return folder
