"""16-bit images to the 8 bits the models see, by the bits the camera really used.

A PNG or TIFF of 16 bits per sample normally spans the whole range (a 12-bit sample is stored
scaled up to 16 bits, as the PNG standard asks; its ``sBIT`` chunk only records the original
depth): it is read as value / 257. But many machine-vision camera SDKs write their 10, 12 or
14 bits as they come, 0..4095 in a 16-bit file, and divided by 257 those read nearly black: a
model passes parts it would fail. A station is told (``limits.sixteen_bit = "12"``); a file
read without that whose values all fit in 12 bits is logged as suspect.
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_8bit", "over_range", "looks_narrower", "display_bits"]


def to_8bit(img: np.ndarray, bits: int = 16) -> np.ndarray:
    """``img`` (uint16 holding ``bits`` significant bits, the low ones) as uint8 over the same
    range: 0 -> 0, 2**bits - 1 -> 255. Values above that range are clipped to 255 (callers that
    must refuse them check :func:`over_range` first)."""
    top = float(2**bits - 1)
    out: np.ndarray = (
        np.clip(img.astype(np.float32) * (255.0 / top), 0, 255).round().astype(np.uint8)
    )
    return out


def over_range(img: np.ndarray, bits: int) -> int:
    """How many values of ``img`` do not fit in ``bits`` bits (0: all do)."""
    return 0 if bits >= 16 else int((img > 2**bits - 1).sum())


def looks_narrower(img: np.ndarray) -> bool:
    """True when every value of a 16-bit image fits in 12 bits: probably a 10- or 12-bit
    camera's raw values (read as 16-bit, nearly black)."""
    return bool(img.size) and int(img.max()) <= 4095


def display_bits(img: np.ndarray) -> int:
    """The fewest bits (8..16) that hold every value of a 16-bit image: what a page showing it
    to a person scales by, so a 12-bit camera's image is not shown black."""
    top = int(img.max()) if img.size else 0
    return max(8, min(16, top.bit_length()))
