"""Generated images for the quality checks' tests: a checkerboard, a scale-free texture and a
scene of flat parts."""

from __future__ import annotations

import cv2
import numpy as np


def checkerboard(side: int = 256, square: int = 16, lo: int = 20, hi: int = 220) -> np.ndarray:
    """A sharp gray checkerboard of ``square`` px squares."""
    cells = np.indices((side, side)).sum(axis=0) // square % 2
    return np.where(cells == 1, hi, lo).astype(np.uint8)


def texture(side: int = 256, seed: int = 0, mean: float = 120.0, std: float = 35.0) -> np.ndarray:
    """Gray 1/f noise: as much detail per pixel at every scale, as natural scenes and most
    surfaces have, so it looks the same at any resolution."""
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(side)
    k = np.hypot(*np.meshgrid(f, f))
    k[0, 0] = 1.0
    spectrum = (rng.normal(size=(side, side)) + 1j * rng.normal(size=(side, side))) / k
    img = np.fft.ifft2(spectrum).real
    img = (img - img.mean()) / img.std() * std + mean
    return np.clip(img, 0, 255).astype(np.uint8)


def scaled(img: np.ndarray, gain: float) -> np.ndarray:
    """Exposure times ``gain``, clipped to 8 bits."""
    return np.clip(img.astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8)


def parts(side: int = 2048, count: int = 300, seed: int = 0) -> np.ndarray:
    """Overlapping flat rectangles with sharp edges, like parts on a table: unlike a scale-free
    texture, the scene has a size of its own, so its detail per pixel depends on the
    resolution it is taken at."""
    rng = np.random.default_rng(seed)
    img = np.full((side, side), 100, np.uint8)
    for _ in range(count):
        x, y = (int(v) for v in rng.integers(0, side, 2))
        w, h = (int(v) for v in rng.integers(side // 40, side // 6, 2))
        cv2.rectangle(img, (x, y), (x + w, y + h), int(rng.integers(30, 230)), -1)
    return img
