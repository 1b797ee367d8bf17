# ruff: noqa: RUF001
"""A display view as the page reads it: texts split into Chinese and English, a QR as a PNG.

The page never computes an amount: every price and total arrives as text formatted by the
daemon. It never receives markup either, only strings it puts into text nodes.
"""

from __future__ import annotations

import base64
import io
import re
from typing import Any

from hal.display.view import DisplayView

_BILINGUAL = re.compile(
    r"^(?P<zh>[^A-Za-z]*[\u3000-\u9fff\uff00-\uffef][^A-Za-z]*?)\s+(?P<en>[A-Za-z].*)$"
)
"""`正在支付，请稍候 Payment in progress`: Chinese first, then an English hint (messages.py)."""


def bilingual(text: str) -> dict[str, str]:
    """Both languages of a shopper message; text with one language shows it in both, and
    so does text with an amount (a product's name and price is never cut in two)."""
    match = None if "¥" in text else _BILINGUAL.match(text)
    if match is None:
        return {"zh": text, "en": text}
    return {"zh": match["zh"], "en": match["en"]}


def qr_png(data: str) -> str:
    """A data: URL of the QR image; the page shows it in an <img>, so it cannot run."""
    import qrcode

    image = qrcode.make(data, border=4, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def render(view: DisplayView) -> dict[str, Any]:
    return {
        "kind": view.kind,
        "tone": view.tone,
        "headline": bilingual(view.headline),
        "lines": [bilingual(line) for line in view.lines],
        "amount": None if view.amount is None else bilingual(view.amount),
        "items": [item.model_dump() for item in view.items],
        "total": view.total,
        "qr": None if view.qr is None else {"data": view.qr, "image": qr_png(view.qr)},
        "expires_at_ms": None
        if view.expires_at is None
        else round(view.expires_at.timestamp() * 1000),
    }
