"""A simulated camera: codes fed in directly, or image files decoded like camera frames.

Dropping a photo or screenshot of a QR code into `image_dir` exercises the real decoder and the
same debounce as a real camera, without a camera.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from hal.camera.frames import Debouncer
from hal.device import DeviceKind, DeviceStatus
from hal.scanner.protocol import Scan, ScanSink
from hal.scanner.sim import SimulatedReader

if TYPE_CHECKING:
    from hal.camera.decoder import Decoder, Gray

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


def load_gray(path: Path) -> Gray:
    """An image file as the Y plane a camera would deliver."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.uint8)


class SimulatedCamera(SimulatedReader):
    def __init__(
        self,
        image_dir: Path | None = None,
        decoder: Decoder | None = None,
        poll_s: float = 0.5,
        debounce_s: float = 2.0,
    ) -> None:
        super().__init__(DeviceKind.CAMERA)
        if image_dir is not None and decoder is None:
            raise ValueError("a simulated camera reading image files needs a decoder")
        self.image_dir = image_dir
        self.decoder = decoder
        self.poll_s = poll_s
        self.debouncer = Debouncer(debounce_s)
        self._seen: set[str] = set()
        self.unreadable: list[str] = []

    def status(self) -> DeviceStatus:
        detail = f"frames from {self.image_dir}" if self.image_dir else ""
        if self.unreadable:
            detail += f"; {len(self.unreadable)} file(s) are not images"
        return DeviceStatus(DeviceKind.CAMERA, "sim", present=True, ok=True, detail=detail)

    async def run(self, emit: ScanSink) -> None:
        if self.image_dir is None:
            await super().run(emit)
            return
        async with asyncio.TaskGroup() as group:
            group.create_task(super().run(emit))
            group.create_task(self._watch(self.image_dir, emit))

    def _new_files(self, image_dir: Path) -> list[Path]:
        if not image_dir.is_dir():
            return []
        files = sorted(
            p
            for p in image_dir.iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES and p.name not in self._seen
        )
        self._seen.update(p.name for p in files)
        return files

    def _decode_file(self, path: Path) -> list[str]:
        from PIL import UnidentifiedImageError

        assert self.decoder is not None
        try:
            return self.decoder.decode(load_gray(path))
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            log.warning("simulated camera cannot read %s: %s", path.name, exc)
            self.unreadable.append(path.name)
            return []

    async def _watch(self, image_dir: Path, emit: ScanSink) -> None:
        while True:
            for path in await asyncio.to_thread(self._new_files, image_dir):
                codes = await asyncio.to_thread(self._decode_file, path)
                now = time.monotonic()
                for code in self.debouncer.fresh(codes, now):
                    await emit(Scan(text=code, source="camera", at=now))
            await asyncio.sleep(self.poll_s)
