"""Decoder benchmark: median time per 640x480 frame for each library, measured in one run.

The frames imitate what the lores stream sees at a kiosk: uneven lighting, sensor noise, a
slight blur and a code that is neither axis-aligned nor pixel-aligned. A "hit" frame holds a
payment-code-like QR, a "miss" frame the same scene without a code (most frames are misses),
and a "chinese" frame a QR whose payload is UTF-8 Chinese text (an order reference).
Each decoder is configured as the drivers use it (QR only). Wired to `edged bench decode`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import qrcode
from PIL import Image, ImageFilter

from hal.camera.decoder import DEFAULT_DECODER, Decoder, Gray, make_decoder

WIDTH, HEIGHT = 640, 480
PAYMENT_CODE = "134567890123456789"
CHINESE = "订单号 A1234 取货码 8888 谢谢惠顾"
BUDGET_MS = 1.0


Floats = npt.NDArray[np.float64]


def scene(rng: np.random.Generator) -> Floats:
    """Light falling off across the frame plus sensor noise: what decoders must ignore."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = 70 + 60 * (x / WIDTH) + 40 * (y / HEIGHT)
    noisy: Floats = base + rng.normal(0, 6, (HEIGHT, WIDTH))
    return noisy


def _finish(image: Floats) -> Gray:
    pil = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    return np.asarray(pil.filter(ImageFilter.GaussianBlur(0.7)), dtype=np.uint8)


def qr_frame(data: str, rng: np.random.Generator, module_px: int = 4, angle: float = 7) -> Gray:
    """A camera-like frame with one QR code of `data` (UTF-8) in the middle."""
    code = qrcode.QRCode(border=2, box_size=module_px)
    code.add_data(data.encode("utf-8"))
    code.make(fit=True)
    image = code.make_image().get_image().convert("L")
    tilted = image.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=255)
    patch = np.asarray(tilted, dtype=np.float64) / 255 * 160 + 40  # printed black is not 0
    frame = scene(rng)
    h, w = patch.shape
    if h > HEIGHT or w > WIDTH:
        raise ValueError("code does not fit in the frame")
    top, left = (HEIGHT - h) // 2, (WIDTH - w) // 2
    frame[top : top + h, left : left + w] = patch
    return _finish(frame)


def miss_frame(rng: np.random.Generator) -> Gray:
    return _finish(scene(rng))


@dataclass(frozen=True)
class Case:
    name: str
    frame: Gray
    expect: list[str]


def cases(seed: int = 7) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [
        Case("hit", qr_frame(PAYMENT_CODE, rng), [PAYMENT_CODE]),
        Case("miss", miss_frame(rng), []),
        Case("chinese", qr_frame(CHINESE, rng, module_px=3), [CHINESE]),
    ]


def median_ms(fn: Callable[[], object], frames: int) -> float:
    times = []
    for _ in range(frames):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] * 1000


def measure(decoders: list[Decoder], frames: int) -> dict[str, dict[str, tuple[float, bool]]]:
    """decoder -> case -> (median ms, decoded correctly)."""
    out: dict[str, dict[str, tuple[float, bool]]] = {}
    for decoder in decoders:
        row: dict[str, tuple[float, bool]] = {}
        for case in cases():
            correct = decoder.decode(case.frame) == case.expect

            def once(d: Decoder = decoder, frame: Gray = case.frame) -> object:
                return d.decode(frame)

            row[case.name] = (median_ms(once, frames), correct)
        out[decoder.name] = row
    return out


def run_decoder_bench(frames: int = 200) -> str:
    """The report `edged bench decode` prints."""
    if frames < 1:
        raise ValueError("frames must be at least 1")
    decoders = [make_decoder(name) for name in ("zxing", "pyzbar")]
    results = measure(decoders, frames)
    names = [c.name for c in cases()]
    lines = [
        f"QR decode, median ms per {WIDTH}x{HEIGHT} greyscale frame, {frames} frames each",
        f"{'decoder':<10}" + "".join(f"{n:>12}" for n in names),
    ]
    for decoder, row in results.items():
        cells = "".join(f"{row[n][0]:>10.3f}{'  ' if row[n][1] else ' !'}" for n in names)
        lines.append(f"{decoder:<10}{cells}")
    zx, zb = results["zxing"], results["pyzbar"]
    for n in names:
        lines.append(f"pyzbar/zxing on {n}: {zb[n][0] / max(zx[n][0], 1e-9):.1f}x")
    default = results[DEFAULT_DECODER]
    worst = max(ms for ms, _ in default.values())
    wrong = [n for n, (_, ok) in default.items() if not ok]
    verdict = "meets" if worst <= BUDGET_MS and not wrong else "MISSES"
    lines.append(
        f"default decoder {DEFAULT_DECODER}: worst median {worst:.3f} ms, "
        f"{verdict} the {BUDGET_MS:g} ms budget"
        + (f"; wrong result on {', '.join(wrong)}" if wrong else "")
    )
    lines.append("! = the decoder did not return the expected text for that frame")
    return "\n".join(lines)
