"""Headless Chromium (Debian's package, never a downloaded build) driven by Playwright, and
zbar reading a QR code back from a screenshot."""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from edged.services.kiosk_screen import bench

CHROMIUM = Path(bench.CHROMIUM)
FLAGS = tuple(bench.CHROMIUM_FLAGS)
"""Headless and quiet, as `edged bench screen` runs it: the tests see the benched browser."""
KIOSK_VIEWPORT = {"width": 1280, "height": 800}


class ChromiumMissing(RuntimeError):
    pass


@contextmanager
def chromium() -> Iterator[object]:
    """A persistent context on a fresh --user-data-dir, as the kiosk-browser unit runs it."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise ChromiumMissing(
            f"{CHROMIUM} is missing: scripts/system-packages.sh installs chromium"
        )
    profile = tempfile.mkdtemp(prefix="edged-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=list(FLAGS),
                viewport=KIOSK_VIEWPORT,  # type: ignore[arg-type]
                # The tests poll with page functions, which the pages' CSP forbids; the
                # markup test thereby proves text rendering alone keeps a name inert.
                bypass_csp=True,
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def decode_qr(png: bytes) -> list[str]:
    """Every QR code zbar finds in a screenshot, as text."""
    from pyzbar.pyzbar import ZBarSymbol, decode

    image = Image.open(io.BytesIO(png)).convert("L")
    return [symbol.data.decode("utf-8") for symbol in decode(image, symbols=[ZBarSymbol.QRCODE])]
