"""The defaults of a station's ``[limits]`` that other commands share (``inspect backtest``
reads archived images as the stations read them): plain values, no pydantic, so a command's
options can name them without loading the configuration layer at ``inspect --help``."""

from __future__ import annotations

# how a 16-bit image is read: refused, "scale" (x / 257), or a camera's raw values in a 16-bit
# file, "10" | "12" | "14" (x / (2**bits - 1) * 255, a value above refused)
SIXTEEN_BIT = ("refuse", "scale", "10", "12", "14")
MAX_PIXELS = 50_000_000  # largest image, in pixels
MAX_BYTES = 256 * 1024 * 1024  # largest file, in bytes
