"""Paper geometry and text width: CJK characters take two columns on a receipt printer."""

from __future__ import annotations

import unicodedata

COLUMNS_BY_PAPER_MM = {58: 32, 80: 48}


def text_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def clip(text: str, width: int) -> str:
    out, used = [], 0
    for ch in text:
        w = text_width(ch)
        if used + w > width:
            break
        out.append(ch)
        used += w
    return "".join(out)


def columns(left: str, right: str, width: int) -> str:
    right = clip(right, width)
    left = clip(left, max(0, width - text_width(right) - 1))
    gap = width - text_width(left) - text_width(right)
    return left + " " * max(1, gap) + right
