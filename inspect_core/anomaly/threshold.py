"""The threshold of a good-only model, from the scores of good images alone (no torch).

A good image is rejected when any of its pixels scores above the threshold (its image score,
the map's maximum, is above it). The threshold is the lowest value that rejects at most the
target share of the fitting images: the ``k``-th highest image score with
``k = floor(target * n)`` images allowed above it. A pixel scoring exactly the threshold is
good (the runtime's argmax takes the first class on a tie, background).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# the logit of a good image's median pixel: softmax puts its anomaly probability at ~1.8%
MEDIAN_LOGIT = -4.0


@dataclass(frozen=True)
class Threshold:
    """``value``: the score above which a pixel is class ``anomaly``; ``scale``: the score
    distance of one logit (``(score - value) / scale`` is the anomaly logit)."""

    value: float
    scale: float
    target_frr: float
    fit_images: int
    fit_frr: float


def false_reject_rate(image_scores: np.ndarray, value: float) -> float:
    """The share of (good) images whose score is above ``value``."""
    scores = np.asarray(image_scores, np.float64)
    return float((scores > value).mean()) if scores.size else math.nan


def fit_threshold(image_scores: np.ndarray, pixel_median: float, target: float) -> Threshold:
    """The threshold that rejects at most ``target`` of the good fitting images whose image
    scores are ``image_scores``; ``pixel_median``, their pixels' median score, sets the scale
    so that such a pixel has logit :data:`MEDIAN_LOGIT`."""
    scores = np.sort(np.asarray(image_scores, np.float64))
    if scores.size == 0:
        raise ValueError("no good images to fit a threshold on")
    allowed = math.floor(target * scores.size)
    value = float(scores[scores.size - 1 - allowed])
    scale = max((value - pixel_median) / -MEDIAN_LOGIT, 1e-6 * max(abs(value), 1.0))
    return Threshold(value, scale, target, int(scores.size), false_reject_rate(scores, value))
