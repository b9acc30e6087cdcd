"""What an image's quality figures are: focus, clipped shares, mean level, highlights and
contrast.

:func:`measure` reads six figures from one 8-bit image (gray, or RGB as the project reads it),
numpy and OpenCV only:

- ``focus``: how much detail the image has at its finest scale, relative to its detail at 4x
  coarser: the mean gradient energy (squared 3x3 Sobel gradient) of the gray image over that of
  the same image reduced twice by the Gaussian pyramid (1/4 of the side). About 1 for a sharp
  image (natural and textured scenes carry as much gradient per pixel at one scale as at the
  next); towards 1/16 = 0.0625 for an image smooth at its pixel scale (defocused, motion
  blurred); above 1 for fine texture or noise.
- ``clipped_dark`` / ``clipped_bright``: share of pixels at 0..2 / 253..255 (crushed blacks,
  blown highlights);
- ``mean``: the mean gray level, 0..255;
- ``highlights``: the gray level 99 % of the pixels are at or below, 0..255. An exposure cut
  by a factor cuts it too, whatever the scene: x0.3 puts every image's highlights at 77 or
  below, where the brightest part of a well-lit scene rarely is (a dark image's mean can be
  a dark scene's; its highlights seldom are);
- ``contrast``: the standard deviation of the gray levels (RMS contrast), 0..127.5.

Why this focus, not the variance of the Laplacian (``bench/quality.py --focus 40``: 40 val
images of each shipped dataset, limits fitted on 150 train images; bench/README.md). The
Laplacian's variance at the image's own size changed by a factor of 0.7-3.7 when the same
image was taken at half the resolution; on the image resized to a fixed short side (256 or
512 px) by 0.1-0.7, and it no longer saw blur in the camera's pixels (a Gaussian sigma of 3 px
on a 2000 px aerial tile is under half a pixel at 256 px: 60 % of the blurred dubai-aerial
images and 52 % of neu-steel's at 512 px fell below the limit). Both scale with the square of
the exposure (x0.09-0.32 for an image darkened x0.3), so a dark image read as "out of focus"
(10-100 % of them). A ratio of two energies of the same image is free of both: the content's
contrast and the exposure gain cancel (x1.00 at x0.3), and a camera of another resolution that
is in focus keeps it (its finest scale is as sharp as ours): 0.91-1.01 at half resolution on
dubai-aerial, ball-screw and neu-steel, 0.60-0.72 on magnetic-tile and camvid (less steady
there, still nearer 1 than any fixed-side variant). Blur in the camera's pixels removes the
finest scale first: 98-100 % of the images blurred by sigma 3 and all by sigma 6 fell below
the limit. Gradient energy, not Laplacian variance, in the ratio: the Laplacian weights a
frequency by its fourth power, so on a blurred 8-bit image its fine term is the rounding noise,
which keeps the ratio up (sigma 6: 32 % of neu-steel's and 77 % of ball-screw's below the
limit); its ratio also moved 0.65-1.9x at half resolution.

Speed (``bench/quality.py``; AMD EPYC, 2 cores shared with other work (load 3-4), AVX-512 VNNI,
one OpenCV thread): a 1000x1000 image takes 1.1-1.4 ms gray and 1.4-1.7 ms RGB, median of 50,
two runs (the 16-bit Sobel and the histogram carry it; float32 gradients made it 9-15 ms).
"""

from __future__ import annotations

import cv2
import numpy as np

from inspect_core.errors import ImageError
from inspect_core.types import Figure, QualityFigures

__all__ = ["FIGURES", "MIN_SIDE", "Figure", "QualityFigures", "gray_of", "measure"]

FIGURES: tuple[Figure, ...] = (
    "focus",
    "clipped_dark",
    "clipped_bright",
    "mean",
    "highlights",
    "contrast",
)
DARK = 2  # a pixel at or below this level is clipped dark
BRIGHT = 253  # at or above: clipped bright
HIGHLIGHTS = 0.99  # the share of pixels at or below the highlights level
MIN_SIDE = 16  # the pyramid's second level needs 4 px a side
LEVELS = 2  # pyramid levels between the fine and the coarse gradient energy
COARSE_FLOOR = 1.0  # the least coarse gradient energy divided by: a flat image's focus is finite


def gray_of(image: np.ndarray) -> np.ndarray:
    """The gray image of an 8-bit gray (H, W), (H, W, 1) or RGB (H, W, 3) image; ImageError
    saying what is wrong with anything else."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"quality figures need an image array, got {type(image).__name__}")
    if image.dtype == np.uint16:
        raise ImageError(
            "quality figures need an 8-bit image, got 16-bit: read it as the station does "
            "(inspect_core.data.read_image scales 16 bits to 8) before measuring"
        )
    if image.dtype != np.uint8:
        raise ImageError(f"quality figures need an 8-bit (uint8) image, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ImageError(
            f"quality figures need a gray (H, W) or RGB (H, W, 3) image, got shape {image.shape}"
        )
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        what = "empty" if h * w == 0 else "too small"
        raise ImageError(
            f"the image is {what} ({w}x{h} px); quality figures need at least "
            f"{MIN_SIDE}x{MIN_SIDE} px"
        )
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def gradient_energy(gray: np.ndarray) -> float:
    """Mean squared 3x3 Sobel gradient (a ramp of one gray level per px reads 64). int16 holds
    any Sobel of an 8-bit image (|g| <= 1020) and is ~10x faster than float32 here."""
    total = 0.0
    for dx, dy in ((1, 0), (0, 1)):
        mean, std = cv2.meanStdDev(cv2.Sobel(gray, cv2.CV_16S, dx, dy))
        total += float(mean[0, 0]) ** 2 + float(std[0, 0]) ** 2
    return total


def focus_of(gray: np.ndarray) -> float:
    """Fine over coarse gradient energy (the module's docstring says why)."""
    coarse = gray
    for _ in range(LEVELS):
        coarse = cv2.pyrDown(coarse)
    return gradient_energy(gray) / max(gradient_energy(coarse), COARSE_FLOOR)


def measure(image: np.ndarray) -> QualityFigures:
    """The quality figures of one 8-bit gray or RGB image (ImageError for anything else)."""
    gray = gray_of(image)
    hist = cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel().astype(np.float64)
    n = float(hist.sum())
    levels = np.arange(256, dtype=np.float64)
    mean = float(hist @ levels) / n
    var = float(hist @ (levels - mean) ** 2) / n
    return QualityFigures(
        focus=focus_of(gray),
        clipped_dark=float(hist[: DARK + 1].sum()) / n,
        clipped_bright=float(hist[BRIGHT:].sum()) / n,
        mean=mean,
        highlights=float(np.searchsorted(np.cumsum(hist), HIGHLIGHTS * n)),
        contrast=var**0.5,
    )
