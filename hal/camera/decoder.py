"""Find codes in a greyscale frame (the Y plane of a YUV camera stream).

Two libraries sit behind one small interface so they can be measured against each other on
the same frames (`hal.camera.bench`): zxing-cpp is the default because it measured about an
order of magnitude faster than zbar on 640x480 frames on this project's CI machine. Both are
limited to the symbologies the shop configured: every extra format is extra work per frame.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from hal.camera.symbologies import MATRIX, SYMBOLOGIES, check_symbologies

Gray = npt.NDArray[np.uint8]
DecoderName = Literal["zxing", "pyzbar"]
DEFAULT_DECODER: DecoderName = "zxing"


class Decoder(Protocol):
    name: str

    def decode(self, gray: Gray) -> list[str]:
        """Texts of the codes found in a 2-D uint8 greyscale image (may be empty)."""
        ...


def _as_gray(frame: Gray) -> Gray:
    if frame.ndim != 2 or frame.dtype != np.uint8:
        raise ValueError(f"decoder wants a 2-D uint8 frame, got {frame.dtype} {frame.shape}")
    return frame if frame.flags.c_contiguous else np.ascontiguousarray(frame)


class ZxingDecoder:
    name = "zxing"

    def __init__(self, symbologies: list[str], invert: bool = False) -> None:
        import zxingcpp

        self._zx: Any = zxingcpp
        names = check_symbologies(symbologies)
        self.formats = zxingcpp.barcode_formats_from_str(",".join(SYMBOLOGIES[n][0] for n in names))
        # Matrix codes are found at any angle anyway; rotating only helps linear codes.
        self.try_rotate = any(n not in MATRIX for n in names)
        self.try_invert = invert
        """Light-on-dark codes (phones in dark mode) cost ~25 % more time; off by default."""

    def decode(self, gray: Gray) -> list[str]:
        results = self._zx.read_barcodes(
            _as_gray(gray),
            formats=self.formats,
            try_rotate=self.try_rotate,
            try_invert=self.try_invert,
        )
        return [r.text for r in results if r.valid and r.text]


class PyzbarDecoder:
    name = "pyzbar"

    def __init__(self, symbologies: list[str]) -> None:
        from pyzbar import pyzbar

        self._pyzbar: Any = pyzbar
        names = check_symbologies(symbologies)
        self.symbols = [getattr(pyzbar.ZBarSymbol, SYMBOLOGIES[n][1]) for n in names]

    def decode(self, gray: Gray) -> list[str]:
        frame = _as_gray(gray)
        height, width = frame.shape
        results = self._pyzbar.decode((frame.tobytes(), width, height), symbols=self.symbols)
        texts = []
        for r in results:
            try:
                texts.append(r.data.decode("utf-8"))
            except UnicodeDecodeError:
                continue  # not a code we could act on; never guess at a payment code
        return [t for t in texts if t]


def make_decoder(name: str = DEFAULT_DECODER, symbologies: list[str] | None = None) -> Decoder:
    symbologies = symbologies if symbologies is not None else ["qrcode"]
    if name == "zxing":
        return ZxingDecoder(symbologies)
    if name == "pyzbar":
        try:
            return PyzbarDecoder(symbologies)
        except ImportError as exc:
            raise ValueError(
                "decoder 'pyzbar' needs pyzbar and libzbar0: pip install 'edged[pyzbar]'"
            ) from exc
    raise ValueError(f"unknown decoder {name!r} (known: zxing, pyzbar)")
