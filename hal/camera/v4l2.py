"""USB webcams through V4L2, via OpenCV's capture (an optional extra: opencv-python-headless).

Webcams deliver YUYV or MJPEG; OpenCV hands back BGR frames which are converted to grey once
per frame. It costs more CPU than the Pi camera's Y plane, hence the same frame-rate cap.
"""

from __future__ import annotations

import importlib
from typing import Any

from hal.camera.decoder import Decoder, Gray, make_decoder
from hal.camera.frames import FrameReader
from hal.config import V4l2Camera
from hal.device import DeviceError


class V4l2Source:
    name = "v4l2"

    def __init__(self, config: V4l2Camera, backend: Any = None) -> None:
        self.config = config
        self._cv2 = backend
        self._capture: Any = None

    def open(self) -> None:
        if self._cv2 is None:
            try:
                self._cv2 = importlib.import_module("cv2")
            except ImportError as exc:
                raise DeviceError(
                    "the v4l2 camera driver needs OpenCV: pip install opencv-python-headless"
                ) from exc
        cv2 = self._cv2
        capture = cv2.VideoCapture(self.config.device, cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise DeviceError(f"cannot open {self.config.device} (see `edged doctor`)")
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.config.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.config.height)
        capture.set(cv2.CAP_PROP_FPS, self.config.max_fps)
        self._capture = capture

    def grab(self) -> Gray | None:
        if self._capture is None:
            raise DeviceError("camera is not open")
        ok, frame = self._capture.read()
        if not ok:
            raise DeviceError(f"{self.config.device} stopped delivering frames")
        gray: Gray = self._cv2.cvtColor(frame, self._cv2.COLOR_BGR2GRAY)
        return gray

    def close(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()


def build_v4l2_reader(
    config: V4l2Camera, backend: Any = None, decoder: Decoder | None = None
) -> FrameReader:
    return FrameReader(
        V4l2Source(config, backend),
        decoder or make_decoder(config.decoder, config.symbologies),
        max_fps=config.max_fps,
        debounce_s=config.debounce_s,
    )
