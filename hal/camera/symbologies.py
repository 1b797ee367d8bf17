"""Barcode symbologies a camera can be asked to read, named once for both decoder libraries."""

from __future__ import annotations

# Our names -> (zxing-cpp BarcodeFormat name, zbar ZBarSymbol name)
SYMBOLOGIES: dict[str, tuple[str, str]] = {
    "qrcode": ("QRCode", "QRCODE"),
    "ean13": ("EAN13", "EAN13"),
    "ean8": ("EAN8", "EAN8"),
    "upca": ("UPCA", "UPCA"),
    "upce": ("UPCE", "UPCE"),
    "code128": ("Code128", "CODE128"),
    "code39": ("Code39", "CODE39"),
    "code93": ("Code93", "CODE93"),
    "itf": ("ITF", "I25"),
    "codabar": ("Codabar", "CODABAR"),
    "pdf417": ("PDF417", "PDF417"),
    "databar": ("DataBar", "DATABAR"),
}
MATRIX = frozenset({"qrcode", "pdf417"})


def check_symbologies(symbologies: list[str]) -> list[str]:
    """QR is always read (payment codes, orders); unknown names are a config error."""
    names = [s.strip().lower() for s in symbologies]
    unknown = [s for s in names if s not in SYMBOLOGIES]
    if unknown:
        known = ", ".join(sorted(SYMBOLOGIES))
        raise ValueError(f"unknown symbology {', '.join(unknown)} (known: {known})")
    if "qrcode" not in names:
        names.insert(0, "qrcode")
    return list(dict.fromkeys(names))
