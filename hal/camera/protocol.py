"""The camera seam: a camera is a code reader (it yields decoded codes, not frames)."""

from hal.scanner.protocol import CodeReader

Camera = CodeReader
