"""Turn a PrintDocument into ESC/POS (through python-escpos) or into plain text.

Every printer driver, simulated or real, renders through here, so what the simulated printer
writes to disk is byte for byte what a real one would receive.
"""

from __future__ import annotations

from typing import Any

from hal.printer.document import Columns, Feed, PrintDocument, QrCode, Rule, Text
from hal.printer.layout import clip, columns, text_width

CHINESE_MODE_ON = b"\x1c\x26"
"""FS &: the printer reads two-byte GB18030 characters from here on."""


def render_text(document: PrintDocument, width: int) -> str:
    lines: list[str] = []
    for block in document.blocks:
        if isinstance(block, Text):
            text = clip(block.text, width)
            pad = width - text_width(text)
            if block.align == "center":
                text = " " * (pad // 2) + text
            elif block.align == "right":
                text = " " * pad + text
            lines.append(text)
        elif isinstance(block, Columns):
            lines.append(columns(block.left, block.right, width))
        elif isinstance(block, Rule):
            lines.append("-" * width)
        elif isinstance(block, QrCode):
            lines.append(f"[QR {block.data}]")
        elif isinstance(block, Feed):
            lines.extend([""] * block.lines)
    if document.cut:
        lines.append("=" * width + " (cut)")
    return "\n".join(lines) + "\n"


def render_escpos(printer: Any, document: PrintDocument, width: int, encoding: str) -> None:
    """Drive a python-escpos printer object (Dummy, Usb, Serial or Network)."""
    printer.hw("INIT")
    printer._raw(CHINESE_MODE_ON)

    def write(line: str) -> None:
        printer._raw(line.encode(encoding) + b"\n")

    for block in document.blocks:
        if isinstance(block, Text):
            printer.set(
                align=block.align,
                bold=block.bold,
                double_height=block.large,
                double_width=block.large,
                normal_textsize=not block.large,
            )
            write(clip(block.text, width // 2 if block.large else width))
            printer.set(align="left", bold=False, normal_textsize=True)
        elif isinstance(block, Columns):
            write(columns(block.left, block.right, width))
        elif isinstance(block, Rule):
            write("-" * width)
        elif isinstance(block, QrCode):
            # python-escpos cannot centre a native QR itself; alignment applies to it.
            printer.set(align="center")
            printer.qr(block.data, size=block.size, native=True)
            printer.set(align="left")
        elif isinstance(block, Feed):
            printer._raw(b"\n" * block.lines)
    if document.open_drawer:
        printer.cashdraw(2)
    if document.cut:
        printer.cut()
