"""16-bit images to the 8 bits the models see, by the bits the camera really used.

Machine-vision cameras deliver 10, 12 or 14 significant bits in a 16-bit PNG or TIFF. Divided
by 257 as if they used all 16, a 12-bit image (0..4095) becomes 0..16: nearly black, and a
model passes parts it would fail. A PNG may say how many bits are significant (its ``sBIT``
chunk); where a file does not, the station is told (``limits.sixteen_bit = "12"``), and a file
read without either whose values all fit in 12 bits is logged as suspect.
"""

from __future__ import annotations

import logging
import struct

import numpy as np

__all__ = ["png_significant_bits", "to_8bit", "looks_narrower"]

log = logging.getLogger("inspect.data")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_significant_bits(data: bytes) -> int | None:
    """The significant bits a PNG's ``sBIT`` chunk records (the largest over its channels), or
    None: not a PNG, no such chunk before the image data, or a damaged chunk list."""
    if not data.startswith(PNG_SIGNATURE):
        return None
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"sBIT":
            bits = data[pos + 8 : pos + 8 + min(length, 4)]
            return max(bits) if bits and 1 <= max(bits) <= 16 else None
        if kind in (b"IDAT", b"IEND"):
            return None
        pos += 12 + length
    return None


def to_8bit(img: np.ndarray, bits: int) -> np.ndarray:
    """``img`` (uint16 holding ``bits`` significant bits) as uint8 over the same range:
    0 -> 0, 2**bits - 1 -> 255. Values above that range are clipped to 255 (callers that must
    refuse them check :func:`over_range` first)."""
    top = float(2**bits - 1)
    return np.clip(img.astype(np.float32) * (255.0 / top), 0, 255).round().astype(np.uint8)


def over_range(img: np.ndarray, bits: int) -> int:
    """How many values of ``img`` do not fit in ``bits`` bits (0: all do)."""
    return 0 if bits >= 16 else int((img > 2**bits - 1).sum())


def looks_narrower(img: np.ndarray) -> bool:
    """True when every value of a 16-bit image fits in 12 bits: probably a 10- or 12-bit
    camera's image that no header says so of (scaled as 16-bit, it reads nearly black)."""
    return bool(img.size) and int(img.max()) <= 4095
