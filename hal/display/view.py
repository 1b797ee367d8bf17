"""What a customer display shows, independent of how big the display is."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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

    def pole_lines(self) -> tuple[str, str]:
        second = self.amount if self.amount is not None else (self.lines[0] if self.lines else "")
        return self.headline, second
