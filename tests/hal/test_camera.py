"""Cameras: decoders on camera-like frames, the Pi camera's lores Y plane, image-file frames."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import qrcode

from hal.camera.bench import CHINESE, PAYMENT_CODE, cases, run_decoder_bench
from hal.camera.decoder import make_decoder
from hal.camera.frames import Debouncer
from hal.camera.picam import build_picamera_reader
from hal.camera.sim import SimulatedCamera
from hal.config import PiCamera, SimCamera
from hal.device import DeviceError
from hal.factory import build_camera
from hal.scanner.protocol import Scan
from tests.hal.helpers import until


@pytest.mark.parametrize("name", ["zxing", "pyzbar"])
def test_both_decoders_read_hit_and_chinese_frames_and_nothing_in_a_miss(name: str) -> None:
    decoder = make_decoder(name)
    by_case = {c.name: decoder.decode(c.frame) for c in cases()}
    assert by_case == {"hit": [PAYMENT_CODE], "miss": [], "chinese": [CHINESE]}


def test_ean13_is_read_only_when_configured() -> None:
    import zxingcpp

    barcode = zxingcpp.create_barcode("4006381333931", zxingcpp.BarcodeFormat.EAN13)
    image = np.asarray(barcode.to_image(scale=3, add_quiet_zones=True), dtype=np.uint8)
    assert make_decoder("zxing", ["qrcode"]).decode(image) == []
    assert make_decoder("zxing", ["ean13"]).decode(image) == ["4006381333931"]


def test_bad_decoder_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown symbology"):
        make_decoder("zxing", ["qr-code"])
    with pytest.raises(ValueError, match="unknown decoder"):
        make_decoder("opencv")
    with pytest.raises(ValueError, match="2-D uint8"):
        make_decoder().decode(np.zeros((4, 4, 3), dtype=np.uint8))


def test_debouncer_reports_a_code_once_while_it_stays_in_view() -> None:
    deb = Debouncer(hold_s=2.0)
    assert deb.fresh(["A"], 0.0) == ["A"]
    assert deb.fresh(["A"], 1.5) == []
    assert deb.fresh(["A", "B"], 3.0) == ["B"]  # A never left the view
    assert deb.fresh([], 6.0) == []
    assert deb.fresh(["A"], 6.1) == ["A"]  # out of view for > 2 s: a new scan


class FakePicamera2:
    """picamera2.Picamera2 as documented: create_video_configuration(main=, lores=,
    controls=), configure(), start(), capture_array(name) -> ndarray, stop(), close().
    A YUV420 lores array has shape (height * 3 / 2, width)."""

    instances: list[FakePicamera2] = []

    def __init__(self, frames: list[np.ndarray[Any, Any]]) -> None:
        self.frames = frames
        self.config: dict[str, Any] = {}
        self.started = self.closed = False
        self.captures: list[float] = []
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main: Any = None, lores: Any = None, **kw: Any) -> Any:
        return {"main": main, "lores": lores, **kw}

    def configure(self, config: Any) -> None:
        self.config = config

    def start(self) -> None:
        self.started = True

    def capture_array(self, name: str = "main") -> np.ndarray[Any, Any]:
        assert name == "lores" and self.started
        self.captures.append(time.monotonic())
        w, h = self.config["lores"]["size"]
        y = self.frames[min(len(self.captures) - 1, len(self.frames) - 1)]
        assert y.shape == (h, w)
        uv = np.full((h // 2, w), 128, dtype=np.uint8)
        return np.vstack([y, uv])

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


async def test_picamera_reads_y_plane_debounces_and_caps_frame_rate() -> None:
    hit, miss, chinese = (c.frame for c in cases())
    frames = [hit, hit, hit, miss, chinese]
    module = type("picamera2", (), {"Picamera2": lambda: FakePicamera2(frames)})
    config = PiCamera(driver="picamera2", max_fps=20, debounce_s=5)
    reader = build_picamera_reader(config, backend=module)
    scans: list[Scan] = []

    async def emit(scan: Scan) -> None:
        scans.append(scan)

    task = asyncio.create_task(reader.run(emit))
    try:
        await until(lambda: len(scans) == 2)
        camera = FakePicamera2.instances[-1]
        assert camera.config["lores"] == {"size": (640, 480), "format": "YUV420"}
        assert [s.text for s in scans] == [PAYMENT_CODE, CHINESE]
        assert all(s.source == "camera" for s in scans)
        gaps = np.diff(camera.captures)
        assert np.median(gaps) >= 0.045  # 20 fps cap, not a busy loop
        assert reader.status().ok
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert camera.closed and not reader.status().present


async def test_camera_that_fails_raises_device_error() -> None:
    class Broken(FakePicamera2):
        def capture_array(self, name: str = "main") -> np.ndarray[Any, Any]:
            raise RuntimeError("Camera frontend has timed out!")

    module = type("picamera2", (), {"Picamera2": lambda: Broken([])})
    reader = build_picamera_reader(PiCamera(driver="picamera2"), backend=module)
    with pytest.raises(DeviceError, match="timed out"):
        await reader.run(lambda scan: asyncio.sleep(0))


async def test_simulated_camera_decodes_image_files_dropped_in_its_folder(tmp_path: Path) -> None:
    camera = build_camera(SimCamera(image_dir=tmp_path, poll_s=0.02, debounce_s=0))
    assert isinstance(camera, SimulatedCamera)
    scans: list[str] = []

    async def emit(scan: Scan) -> None:
        scans.append(scan.text)

    task = asyncio.create_task(camera.run(emit))
    try:
        qrcode.make("订单 ORD-42".encode()).save(tmp_path / "a.png")
        (tmp_path / "b.png").write_bytes(b"not an image")
        await until(lambda: scans == ["订单 ORD-42"])
        await until(lambda: camera.status().detail.endswith("1 file(s) are not images"))
        camera.feed("typed-in")
        await until(lambda: scans[-1] == "typed-in")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_decoder_bench_reports_both_libraries_and_the_budget() -> None:
    report = run_decoder_bench(frames=5)
    assert "zxing" in report and "pyzbar" in report
    assert "hit" in report and "miss" in report and "chinese" in report
    assert "default decoder zxing" in report
    assert " !" not in report.splitlines()[2]  # zxing decoded every frame correctly
