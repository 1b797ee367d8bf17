"""The loop every camera shares: grab a frame, decode it off the event loop, debounce, pace.

A camera pointed at a phone sees the same payment code in every frame for seconds; the
shopper expects one beep, so a code is reported once and again only after it has been out of
view for `debounce_s`. Frames are pulled no faster than `max_fps` because each one costs CPU
that the rest of the daemon (and a Pi's thermal budget) needs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

from hal.device import DeviceError, DeviceKind, DeviceStatus
from hal.scanner.protocol import Scan, ScanSink

if TYPE_CHECKING:
    from hal.camera.decoder import Decoder, Gray

log = logging.getLogger(__name__)


class FrameSource(Protocol):
    """A camera backend: blocking calls, always run in the reader's worker thread."""

    name: str

    def open(self) -> None: ...

    def grab(self) -> Gray | None:
        """The next greyscale frame, or None when there is none (yet)."""
        ...

    def close(self) -> None: ...


class Debouncer:
    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self._last_seen: dict[str, float] = {}

    def fresh(self, codes: list[str], now: float) -> list[str]:
        """Codes to report now; every sighting keeps a code quiet for another hold_s."""
        out = []
        for code in dict.fromkeys(codes):
            last = self._last_seen.get(code)
            if last is None or now - last > self.hold_s:
                out.append(code)
            self._last_seen[code] = now
        for code, seen in list(self._last_seen.items()):
            if now - seen > self.hold_s:
                del self._last_seen[code]
        return out


class FrameReader:
    """A CodeReader over any FrameSource."""

    def __init__(
        self,
        source: FrameSource,
        decoder: Decoder,
        max_fps: float = 10.0,
        debounce_s: float = 2.0,
        idle_sleep_s: float | None = None,
    ) -> None:
        if max_fps <= 0:
            raise ValueError("max_fps must be positive")
        self.source = source
        self.decoder = decoder
        self.min_interval = 1.0 / max_fps
        self.idle_sleep_s = idle_sleep_s if idle_sleep_s is not None else self.min_interval
        self.debouncer = Debouncer(debounce_s)
        self.frames = 0
        self._open = False
        self._detail = "not opened yet"
        # One worker: frames are decoded in order and a slow decode backs off the grab rate.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"camera-{source.name}")

    def status(self) -> DeviceStatus:
        return DeviceStatus(
            DeviceKind.CAMERA,
            self.source.name,
            present=self._open,
            ok=self._open,
            detail=self._detail,
        )

    def _grab_and_decode(self) -> list[str] | None:
        frame = self.source.grab()
        if frame is None:
            return None
        self.frames += 1
        return self.decoder.decode(frame)

    async def run(self, emit: ScanSink) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self.source.open)
        except DeviceError:
            raise
        except Exception as exc:
            self._detail = f"cannot open camera: {exc}"
            raise DeviceError(self._detail) from exc
        self._open = True
        self._detail = f"{self.source.name} open, decoder {self.decoder.name}"
        try:
            while True:
                started = time.monotonic()
                try:
                    codes = await loop.run_in_executor(self._executor, self._grab_and_decode)
                except Exception as exc:
                    self._detail = f"camera failed: {exc}"
                    raise DeviceError(self._detail) from exc
                if codes is None:
                    await asyncio.sleep(self.idle_sleep_s)
                    continue
                now = time.monotonic()
                for code in self.debouncer.fresh(codes, now):
                    await emit(Scan(text=code, source="camera", at=now))
                spare = self.min_interval - (time.monotonic() - started)
                if spare > 0:
                    await asyncio.sleep(spare)
        finally:
            self._open = False
            try:
                await asyncio.shield(loop.run_in_executor(self._executor, self.source.close))
            except Exception:  # closing a camera that already failed
                log.debug("camera close failed", exc_info=True)
