"""What a customer display shows, independent of how big the display is."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ViewItem(BaseModel):
    """One basket line as a screen lists it; every amount is text the service formatted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    line: int
    name: str
    quantity: int
    unit_price: str
    amount: str


class DisplayView(BaseModel):
    """A two-line pole display shows `headline` and `amount` (or the first line); a screen
    shows everything."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    headline: str
    lines: list[str] = Field(default_factory=list)
    amount: str | None = None
    qr: str | None = None
    """Data of a QR code the shopper scans (native-QR payment)."""
    tone: str = "info"
    """`info`, `ok`, `warn` or `error`: how a screen colours the view."""
    kind: str = "message"
    """What a touch screen lays out: `welcome`, `basket`, `paying`, `qr`, `paid` or `message`."""
    items: list[ViewItem] = Field(default_factory=list)
    """Every basket line (a screen scrolls; `lines` keeps only the newest)."""
    total: str | None = None
    """The amount alone (`¥10.00`), for a screen that labels it itself."""
    expires_at: datetime | None = None
    """When the shown QR stops being valid (a screen counts down to it)."""

    def pole_lines(self) -> tuple[str, str]:
        second = self.amount if self.amount is not None else (self.lines[0] if self.lines else "")
        return self.headline, second
