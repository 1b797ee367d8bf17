"""Raspberry Pi camera through picamera2, reading codes from the low-resolution stream.

The ISP produces a small YUV420 "lores" stream next to the main one at no CPU cost; its first
`height` rows are the Y (luma) plane, which is exactly the greyscale image a decoder wants, so
no colour conversion happens on the CPU. picamera2 is an optional extra installed from apt on
Raspberry Pi OS; the backend is imported when the camera starts.
"""

from __future__ import annotations

import importlib
from typing import Any

from hal.camera.decoder import Decoder, Gray, make_decoder
from hal.camera.frames import FrameReader
from hal.config import PiCamera
from hal.device import DeviceError


class PicameraSource:
    name = "picamera2"

    def __init__(self, config: PiCamera, backend: Any = None) -> None:
        self.config = config
        self._backend = backend
        self._camera: Any = None

    def open(self) -> None:
        module = self._backend
        if module is None:
            try:
                module = importlib.import_module("picamera2")
            except ImportError as exc:
                raise DeviceError(
                    "the picamera2 driver needs python3-picamera2 (apt install python3-picamera2)"
                ) from exc
        size = (self.config.width, self.config.height)
        camera = module.Picamera2()
        try:
            video = camera.create_video_configuration(
                main={"size": size, "format": "RGB888"},
                lores={"size": size, "format": "YUV420"},
                controls={"FrameRate": self.config.max_fps},
            )
            camera.configure(video)
            camera.start()
        except Exception:
            camera.close()
            raise
        self._camera = camera

    def grab(self) -> Gray | None:
        if self._camera is None:
            raise DeviceError("camera is not open")
        frame = self._camera.capture_array("lores")
        # YUV420 arrays are (height * 3 / 2, width): Y rows first, then the U and V planes.
        height, width = self.config.height, self.config.width
        y_plane: Gray = frame[:height, :width]
        return y_plane

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            try:
                camera.stop()
            finally:
                camera.close()


def build_picamera_reader(
    config: PiCamera, backend: Any = None, decoder: Decoder | None = None
) -> FrameReader:
    return FrameReader(
        PicameraSource(config, backend),
        decoder or make_decoder(config.decoder, config.symbologies),
        max_fps=config.max_fps,
        debounce_s=config.debounce_s,
    )
