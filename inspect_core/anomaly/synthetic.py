"""Synthetic defects on good images (numpy and OpenCV, no torch): what a good-only network
trained from scratch learns to find, as DRAEM (Zavrtanik et al. 2021) and CutPaste (Li et al.
2021) do. No real defect of any product is used: every defect is made here from the good
images themselves.

Four kinds, each returning the changed image and the mask of the pixels it changed:

- ``texture``: a noise-shaped region filled with another good image's texture, brightened,
  darkened or inverted, blended in (DRAEM's anomaly source, with the good images as the
  texture source instead of a texture dataset);
- ``scar``: a thin rotated strip cut from elsewhere in the image, shifted in brightness, pasted
  (CutPaste-scar);
- ``line``: a thin random polyline, darker or lighter than its surroundings (a crack, a
  scratch);
- ``blob``: a soft-edged ellipse, darker or lighter (a hole, a stain).

Larger regions and a fifth kind (a large smooth region a little darker or lighter, for
magnetic tile's "uneven") were tried: pixel AUROC rose, image AUROC fell (bench/README.md).

A change too faint to see is not a defect: pixels changed by less than :data:`MIN_CHANGE`
gray levels stay background in the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

KINDS = ("texture", "scar", "line", "blob")
MIN_CHANGE = 6.0  # gray levels: a smaller change is not labelled a defect


@dataclass(frozen=True)
class Defect:
    """A good image with one synthetic defect: ``image`` (H, W, C) uint8, ``mask`` (H, W)
    uint8 with 1 where the defect changed the image, and the ``kind`` made."""

    image: np.ndarray
    mask: np.ndarray
    kind: str


def smooth_noise(shape: tuple[int, int], cell: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth random field in [0, 1] of ``shape``: uniform noise on a grid of ``cell`` pixels,
    cubic-interpolated (a cheap stand-in for Perlin noise)."""
    h, w = shape
    gh, gw = max(2, -(-h // cell) + 1), max(2, -(-w // cell) + 1)
    grid = rng.random((gh, gw)).astype(np.float32)
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / max(hi - lo, 1e-6)


def _box(
    shape: tuple[int, int], rng: np.random.Generator, lo: float, hi: float
) -> tuple[int, int, int, int]:
    """A random box (y0, x0, bh, bw) whose sides are ``lo``-``hi`` of the image's."""
    h, w = shape
    bh = max(4, int(h * rng.uniform(lo, hi)))
    bw = max(4, int(w * rng.uniform(lo, hi)))
    bh, bw = min(bh, h), min(bw, w)
    return int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1)), bh, bw


def _texture(img: np.ndarray, donor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    y0, x0, bh, bw = _box((h, w), rng, 0.08, 0.4)
    region = np.zeros((h, w), np.float32)
    noise = smooth_noise((bh, bw), int(rng.integers(4, 16)), rng)
    # the noise inside an ellipse, so the region does not show its box
    ell = np.zeros((bh, bw), np.uint8)
    cv2.ellipse(ell, (bw // 2, bh // 2), (bw // 2, bh // 2), 0, 0, 360, 1, -1)
    region[y0 : y0 + bh, x0 : x0 + bw] = (noise > rng.uniform(0.45, 0.7)) * ell
    source = cv2.resize(donor, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    source = source.reshape(h, w, -1)
    if rng.random() < 0.3:
        source = 255.0 - source
    source = source * rng.uniform(0.4, 1.6) + rng.uniform(-50, 50)
    beta = rng.uniform(0.0, 0.6)  # share of the original kept under the defect
    m = region[..., None]
    return img * (1 - m) + m * (beta * img + (1 - beta) * source)


def _scar(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    length = int(min(h, w) * rng.uniform(0.15, 0.5))
    width = int(rng.integers(2, 8))
    y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
    sy, sx = int(rng.integers(0, h)), int(rng.integers(0, w))
    angle = rng.uniform(0, 180)
    strip = np.zeros((h, w), np.uint8)
    rect = ((float(x), float(y)), (float(length), float(width)), angle)
    cv2.fillPoly(strip, [cv2.boxPoints(rect).astype(np.int32)], 1)
    shift = np.array([[1, 0, x - sx], [0, 1, y - sy]], np.float32)
    moved = np.asarray(cv2.warpAffine(img, shift, (w, h), borderMode=cv2.BORDER_REFLECT))
    moved = moved.reshape(img.shape) * rng.uniform(0.5, 1.5) + rng.uniform(-40, 40)
    m = strip.astype(np.float32)[..., None]
    out: np.ndarray = img * (1 - m) + moved * m
    return out


def _line(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    layer = np.zeros((h, w), np.float32)
    pts = [np.array([rng.uniform(0, w), rng.uniform(0, h)])]
    step = min(h, w) * rng.uniform(0.05, 0.15)
    heading = rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(2, 8))):
        heading += rng.normal(0, 0.5)
        pts.append(pts[-1] + step * np.array([np.cos(heading), np.sin(heading)]))
    poly = np.round(np.array(pts)).astype(np.int32)
    cv2.polylines(layer, [poly], False, 1.0, int(rng.integers(1, 4)), cv2.LINE_AA)
    return _shade(img, layer, rng)


def _blob(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    layer = np.zeros((h, w), np.float32)
    side = min(h, w)
    axes = (
        max(2, int(side * rng.uniform(0.02, 0.12))),
        max(2, int(side * rng.uniform(0.02, 0.12))),
    )
    centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
    cv2.ellipse(layer, centre, axes, rng.uniform(0, 180), 0, 360, 1.0, -1, cv2.LINE_AA)
    soft = np.asarray(cv2.GaussianBlur(layer, (0, 0), max(0.5, min(axes) / 3)))
    return _shade(img, soft / max(float(soft.max()), 1e-6), rng)


def _shade(img: np.ndarray, layer: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``img`` darkened or lightened where ``layer`` (0-1) is set, by 25-90 gray levels."""
    delta = rng.uniform(25, 90) * (-1 if rng.random() < 0.7 else 1)
    return img + delta * layer[..., None]


def add_defect(
    img: np.ndarray, donor: np.ndarray, rng: np.random.Generator, kind: str | None = None
) -> Defect:
    """``img`` (H, W, C) uint8 with one synthetic defect of ``kind`` (random when None);
    ``donor`` (any size, same channels) lends its texture to ``texture`` defects."""
    if img.ndim != 3:
        raise ValueError(f"image of shape {img.shape}: give (H, W, C)")
    kind = kind or str(rng.choice(KINDS))
    base = img.astype(np.float32)
    if kind == "texture":
        out = _texture(base, donor, rng)
    elif kind == "scar":
        out = _scar(base, rng)
    elif kind == "line":
        out = _line(base, rng)
    elif kind == "blob":
        out = _blob(base, rng)
    else:
        raise ValueError(f"unknown synthetic defect {kind!r}: use one of {', '.join(KINDS)}")
    made = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    changed = np.abs(made.astype(np.int16) - img.astype(np.int16)).max(axis=2) >= MIN_CHANGE
    return Defect(made, changed.astype(np.uint8), kind)
