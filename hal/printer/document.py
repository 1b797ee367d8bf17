"""A printable document in device terms (text, rules, QR, cut): what the print queue stores."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(Block):
    kind: Literal["text"] = "text"
    text: str
    align: Literal["left", "center", "right"] = "left"
    bold: bool = False
    large: bool = False


class Columns(Block):
    """A left and a right part on one line, e.g. an item and its amount."""

    kind: Literal["columns"] = "columns"
    left: str
    right: str


class Rule(Block):
    kind: Literal["rule"] = "rule"


class QrCode(Block):
    kind: Literal["qr"] = "qr"
    data: str = Field(min_length=1, max_length=512)
    size: int = Field(6, ge=1, le=16)


class Feed(Block):
    kind: Literal["feed"] = "feed"
    lines: int = Field(1, ge=1, le=10)


AnyBlock = Annotated[Text | Columns | Rule | QrCode | Feed, Field(discriminator="kind")]


class PrintDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    blocks: list[AnyBlock]
    cut: bool = True
    open_drawer: bool = False
