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


REFINE_FRR_FACTOR = 5.0  # a refined threshold may reject at most this times the target


@dataclass(frozen=True)
class Refinement:
    """What a few labelled defects changed: the threshold from ``before`` to ``after`` (the
    value maximising the image F1 on the good fitting images and the defects, no lower than
    the one rejecting :data:`REFINE_FRR_FACTOR` times the target of good images), the share of
    the good fitting images rejected and of the defects caught at each."""

    defect_images: int
    before: float
    after: float
    fit_frr_before: float
    fit_frr_after: float
    caught_before: float
    caught_after: float


def refine_threshold(
    threshold: Threshold, good_scores: np.ndarray, defect_scores: np.ndarray
) -> tuple[Threshold, Refinement]:
    """``threshold`` (fitted on ``good_scores``) lowered, where that catches more of the
    labelled defects (``defect_scores``, their image scores) at a better F1, to at most
    :data:`REFINE_FRR_FACTOR` times its target false-reject rate; never raised (the good
    images' target stays the bound a line asked for)."""
    good = np.sort(np.asarray(good_scores, np.float64))
    bad = np.asarray(defect_scores, np.float64)
    if bad.size == 0:
        raise ValueError("no labelled defect images to refine the threshold with")
    allowed = math.floor(min(0.5, REFINE_FRR_FACTOR * threshold.target_frr) * good.size)
    floor = float(good[good.size - 1 - allowed])

    def f1(value: float) -> float:
        tp = float((bad > value).sum())
        fp = float((good > value).sum())
        return 2 * tp / (2 * tp + fp + (bad.size - tp))

    # a pixel above the value is rejected: just below a defect's score catches it
    below = [float(np.nextafter(v, -np.inf)) for v in bad]
    candidates = [threshold.value, floor] + [v for v in below if floor <= v < threshold.value]
    candidates = [v for v in candidates if v <= threshold.value]
    after = max(candidates, key=lambda v: (f1(v), v))  # the best F1; of equals, the highest
    refined = Threshold(
        after,
        threshold.scale,
        threshold.target_frr,
        threshold.fit_images,
        false_reject_rate(good, after),
    )
    report = Refinement(
        int(bad.size),
        threshold.value,
        after,
        threshold.fit_frr,
        refined.fit_frr,
        float((bad > threshold.value).mean()),
        float((bad > after).mean()),
    )
    return refined, report
