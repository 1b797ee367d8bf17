"""A display view as the page reads it: texts split into Chinese and English, a QR as a PNG.

The page never computes an amount: every price and total arrives as text formatted by the
daemon. It never receives markup either, only strings it puts into text nodes.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass
from typing import Any

from edged.services.checkout import messages as M
from hal.display.view import DisplayView

_PLACEHOLDER = re.compile(r"\{(\w+)(?::[^}]*)?\}")
_HINT_STARTS = re.compile(r"\s+(?=[A-Za-z])")
ENGLISH_FOR_CHINESE_ONLY = {
    M.WELCOME: "Welcome to {shop}",
    M.AMOUNT_DUE: "Amount due {amount}",
    M.TOTAL: "Total {amount}",
    M.AMOUNT_PAID: "Paid {amount}",
}
"""messages.py sentences that carry no English hint of their own."""


@dataclass(frozen=True)
class _Template:
    pattern: re.Pattern[str]
    zh: str
    en: str


def _split(template: str) -> tuple[str, str] | None:
    """Where the English hint of a messages.py sentence starts (placeholders are not text)."""
    literal = _PLACEHOLDER.sub(lambda m: "\0" * len(m.group(0)), template)
    hint = _HINT_STARTS.search(literal)
    if hint is None:
        return None
    return template[: hint.start()], template[hint.end() :]


def _compile(template: str) -> _Template | None:
    halves = _split(template)
    if halves is None:
        english = ENGLISH_FOR_CHINESE_ONLY.get(template)
        if english is None:
            return None
        halves = (template, english)
    parts, last = [], 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[last : match.start()]))
        parts.append(f"(?P<{match.group(1)}>.+?)")
        last = match.end()
    parts.append(re.escape(template[last:]))
    return _Template(re.compile("".join(parts) + "$", re.DOTALL), *halves)


TEMPLATES = [
    t
    for t in (_compile(v) for k, v in vars(M).items() if k.isupper() and isinstance(v, str))
    if t is not None
]


def _fill(half: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), half)


def bilingual(text: str) -> dict[str, str]:
    """A shopper message in each language. The daemon's sentences (messages.py) are Chinese
    with an English hint; a filled-in value in the English half also reaches the Chinese one.
    Anything else (a product's name and price) is shown as it is in both."""
    for template in TEMPLATES:
        match = template.pattern.match(text)
        if match is None:
            continue
        values = {k: bilingual(v) for k, v in match.groupdict().items()}
        zh_only = [k for k in values if "{" + k not in template.zh]
        zh = " ".join(
            [_fill(template.zh, {k: v["zh"] for k, v in values.items()}).strip()]
            + [values[k]["zh"] for k in zh_only]
        )
        en = _fill(template.en, {k: v["en"] for k, v in values.items()}).strip()
        return {"zh": zh, "en": en}
    return {"zh": text, "en": text}


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
