"""Quality limits fitted from a recipe's training images.

Each limit sits at the ``share`` quantile of its figure over the training images (the lower
tail for a least value, the upper for a largest), taken as one of the images' own values so
that at most ``share`` of them fall outside it, then widened by a margin: ``margin`` times the
width of the tail beyond the ``10 x share`` quantile (how far apart the images are out there,
so how far the next one may fall), and at least a floor (:data:`FLOORS`). Focus is fitted on
its logarithm (it varies by factors, not by steps), the others as they are.

Why the tail's width, not the distance to the median: a set whose figures spread wide (neu-steel:
mean levels 34..233) got margins of tens of gray levels. In a development run on 800 of
neu-steel's train images, a quarter of the distance to the median let through 71 % of the
darkened (x0.3) val images and 16 % of the blurred (sigma 3) ones, a quarter of the tail's
width 38 % and 1 %; the val images flagged stayed at or under 1 % either way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from inspect_core.data.datasets import open_dataset, read_image
from inspect_core.errors import DataError, ImageError
from inspect_core.health.limits import LIMITS, LimitSpec, QualityLimits
from inspect_core.health.quality import Figure, QualityFigures, measure

__all__ = [
    "FLOORS",
    "MARGIN",
    "MIN_IMAGES",
    "fit_limits",
    "fit_limits_from_dataset",
    "fit_one",
    "measure_split",
]

MIN_IMAGES = 20  # fewer make the tails guesses
MARGIN = 0.25  # times the tail's width, added beyond the quantile
TAIL = 10.0  # the tail's width: from the share quantile to the (TAIL x share) quantile
# the least widening, in the fitted units: focus x/÷ 1.1, 2 gray levels, 0.5 % of the pixels
FLOORS: dict[Figure, float] = {
    "focus": math.log(1.1),
    "mean": 2.0,
    "highlights": 2.0,
    "contrast": 1.0,
    "clipped_dark": 0.005,
    "clipped_bright": 0.005,
}
CEILINGS: dict[Figure, float] = {
    "mean": 255.0,
    "highlights": 255.0,
    "clipped_dark": 1.0,
    "clipped_bright": 1.0,
}
LOG: frozenset[Figure] = frozenset({"focus"})


def fit_one(values: np.ndarray, spec: LimitSpec, share: float, margin: float = MARGIN) -> float:
    """The limit ``spec`` fitted to ``values`` (one figure of the training images)."""
    x = np.log(np.maximum(values, 1e-12)) if spec.figure in LOG else values
    inner = min(TAIL * share, 0.5)
    if spec.bound == "min":
        q = float(np.quantile(x, share, method="lower"))
        limit = q - max(margin * (float(np.quantile(x, inner)) - q), FLOORS[spec.figure])
    else:
        q = float(np.quantile(x, 1.0 - share, method="higher"))
        limit = q + max(margin * (q - float(np.quantile(x, 1.0 - inner))), FLOORS[spec.figure])
    if spec.figure in LOG:
        return math.exp(limit)
    return min(max(limit, 0.0), CEILINGS.get(spec.figure, math.inf))


def fit_limits(
    figures: Sequence[QualityFigures], share: float = 0.005, margin: float = MARGIN
) -> QualityLimits:
    """Limits that at most ``share`` of ``figures`` (a recipe's training images) fall outside,
    each (at least :data:`MIN_IMAGES` figures; ValueError otherwise)."""
    if not 0.0 < share < 0.5:
        raise ValueError(f"share must be between 0 and 0.5 (0.005 = 0.5 %), got {share!r}")
    if margin < 0:
        raise ValueError(f"margin must be 0 or more, got {margin!r}")
    if len(figures) < MIN_IMAGES:
        raise ValueError(
            f"quality limits need the figures of at least {MIN_IMAGES} training images, "
            f"got {len(figures)}"
        )
    table = {
        spec.key: fit_one(np.array([f.value(spec.figure) for f in figures]), spec, share, margin)
        for spec in LIMITS
    }
    return QualityLimits.model_validate(table)


def measure_split(
    root: str | Path,
    split: str = "train",
    max_images: int | None = None,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[QualityFigures]:
    """The figures of the images of ``split`` of the dataset folder ``root`` (read as the
    station reads them); ``max_images``: that many, evenly spread over the sorted split;
    ``prepare``: applied to each image before it is measured."""
    ds = open_dataset(root, split)
    samples = ds.samples
    if max_images is not None and max_images < len(samples):
        picks = np.linspace(0, len(samples) - 1, max(max_images, 1)).round().astype(int)
        samples = [samples[i] for i in sorted(set(picks.tolist()))]
    out = []
    for s in samples:
        img = read_image(s.image)
        try:
            out.append(measure(prepare(img) if prepare is not None else img))
        except ImageError as e:
            raise DataError(f"{s.image}: {e}; remove it from the {split} split") from e
    return out


def fit_limits_from_dataset(
    root: str | Path,
    share: float = 0.005,
    max_images: int | None = None,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
) -> QualityLimits:
    """Limits fitted (:func:`fit_limits`) from the train split of the dataset folder ``root``;
    ``prepare``: the recipe's preprocessing (an inspector measures the frame the model sees)."""
    figures = measure_split(root, "train", max_images, prepare)
    if len(figures) < MIN_IMAGES:
        raise DataError(
            f"{Path(root) / 'train'}: {len(figures)} training image(s); quality limits are "
            f"fitted from at least {MIN_IMAGES}: add images, or set the limits by hand"
        )
    return fit_limits(figures, share)
