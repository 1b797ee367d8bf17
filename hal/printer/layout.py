"""Paper geometry and text width: CJK characters take two columns on a receipt printer."""

from __future__ import annotations

import unicodedata

COLUMNS_BY_PAPER_MM = {58: 32, 80: 48}


def text_width(text: str) -> int:
    """Columns the text takes on a receipt printer in Chinese (GB18030) mode.

    Only ASCII comes from the single-width font there: every multi-byte character, including
    "¥" and accented letters, is printed from the double-width Chinese font.
    """
    return sum(1 if ord(ch) < 0x80 or _narrow(ch) else 2 for ch in text)


def _narrow(ch: str) -> bool:
    # Half-width katakana/forms (U+FF61-FFDC) are narrow in fonts that have them; keep the
    # Unicode view for those, everything else non-ASCII is double width.
    return unicodedata.east_asian_width(ch) == "H"


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
