"""What a dataset's true masks say about its defects, for ``inspect plugin new --data``.

:func:`survey_dataset` reads the masks of a dataset's training split (the test split of an
MVTec AD folder, whose training images are all defect-free) and measures, per class, its
connected components (8-connected): how many, how large (px) and how thick. The thickness
of a component is read from a distance transform of its mask: ``2 * d`` px, where ``d`` is
the largest distance from one of its pixels to the outside (a band ``w`` px wide measures
``w`` when ``w`` is even, ``w + 1`` when it is odd). A morphological opening of size ``k``
erases a band narrower than ``k`` px (one that measures less than ``k + 1``): a 2 px crack
does not survive ``open`` with ``size = 3``, a 3 px one does.

Nothing here decodes the images themselves except the first (gray or colour); no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from inspect_core.data.datasets import Dataset, open_dataset, read_mask

# percentile for "the small end" of a class's defects: 95% of its components are larger
LOW_PERCENTILE = 5.0


@dataclass(frozen=True)
class ClassSurvey:
    """One class's components over the masks surveyed (areas in px, thickness in px)."""

    index: int
    name: str
    images: int  # masks in which the class occurs
    components: int
    min_area: int = 0
    area_low: float = 0.0  # LOW_PERCENTILE of component areas
    area_median: float = 0.0
    min_thickness: float = 0.0
    thickness_low: float = 0.0  # LOW_PERCENTILE of component thicknesses


@dataclass(frozen=True)
class DatasetSurvey:
    """What :func:`survey_dataset` found. ``split``: the split whose masks were read;
    ``defect_free``: masks without a pixel of any class but 0."""

    root: Path
    name: str
    split: str
    channels: int  # 1 = gray, 3 = colour
    classes: list[str]
    ignore_index: int
    masks: int
    defect_free: int
    per_class: list[ClassSurvey] = field(default_factory=list)

    @property
    def colour(self) -> str:
        return "gray" if self.channels == 1 else "colour"

    @property
    def defects(self) -> list[ClassSurvey]:
        """The classes but 0 that occur in the masks."""
        return [c for c in self.per_class if c.components]

    def lines(self) -> list[str]:
        """The survey in a few lines for a terminal or a file's comments."""
        out = [
            f"{self.name} ({self.root}): {self.colour} images, {self.masks} {self.split} masks, "
            f"{self.defect_free} without defects; classes {', '.join(self.classes)}"
        ]
        for c in self.per_class:
            if not c.components:
                out.append(f"  {c.name}: not in the {self.split} masks")
                continue
            out.append(
                f"  {c.name}: {c.components} regions in {c.images} images; area px min "
                f"{c.min_area}, {LOW_PERCENTILE:g}th pct {c.area_low:.0f}, median "
                f"{c.area_median:.0f}; thickness px min {c.min_thickness:g}, "
                f"{LOW_PERCENTILE:g}th pct {c.thickness_low:g}"
            )
        return out


def survey_dataset(root: str | Path, max_masks: int = 2000) -> DatasetSurvey:
    """Measure the defects in the true masks of the dataset at ``root`` (either layout; see
    :mod:`inspect_core.data.datasets`). At most ``max_masks`` masks are read, evenly spread
    over the split. A malformed dataset is a :class:`~inspect_core.errors.DataError`."""
    ds = open_dataset(root, "train")
    if all(s.mask is None for s in ds.samples):  # MVTec AD: the defects are in test/
        ds = open_dataset(root, "test")
    picked = np.unique(np.linspace(0, len(ds) - 1, min(len(ds), max_masks)).round().astype(int))
    n = len(ds.classes)
    areas: list[list[int]] = [[] for _ in range(n)]
    thick: list[list[float]] = [[] for _ in range(n)]
    images = [0] * n
    defect_free = 0
    for i in picked:
        mask = _mask(ds, int(i))
        present = [c for c in range(1, n) if (mask == c).any()]
        defect_free += not present
        for c in present:
            images[c] += 1
            a, t = _components(mask == c)
            areas[c] += a
            thick[c] += t
    per_class = [
        _class_survey(c, ds.classes[c], images[c], areas[c], thick[c]) for c in range(1, n)
    ]
    return DatasetSurvey(
        Path(root),
        ds.name,
        ds.split,
        ds.channels,
        list(ds.classes),
        ds.ignore_index,
        len(picked),
        defect_free,
        per_class,
    )


def _mask(ds: Dataset, i: int) -> np.ndarray:
    s = ds.samples[i]
    if s.mask is None:  # a defect-free image: its size does not matter here
        return np.zeros((1, 1), np.uint8)
    return read_mask(s.mask, len(ds.classes), ds.ignore_index, s.binary_class)


def _components(m: np.ndarray) -> tuple[list[int], list[float]]:
    """Areas and thicknesses (``2 *`` the largest distance to the outside) of the
    8-connected components of the boolean mask ``m``, measured on the box of its pixels."""
    x, y, w, h = cv2.boundingRect(m.view(np.uint8))
    sub = np.zeros((h + 2, w + 2), np.uint8)  # a zero border: the image edge bounds a region
    sub[1:-1, 1:-1] = m[y : y + h, x : x + w]
    n, labels, stats, _ = cv2.connectedComponentsWithStats(sub, connectivity=8)
    dist = cv2.distanceTransform(sub, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    inside = labels > 0
    deepest = np.zeros(n, np.float32)
    np.maximum.at(deepest, cast("NDArray[np.intp]", labels[inside]), dist[inside])  # int32 labels
    areas = [int(a) for a in stats[1:, cv2.CC_STAT_AREA]]
    return areas, [round(2 * float(d), 1) for d in deepest[1:]]


def _class_survey(
    index: int, name: str, images: int, areas: list[int], thick: list[float]
) -> ClassSurvey:
    if not areas:
        return ClassSurvey(index, name, images, 0)
    return ClassSurvey(
        index,
        name,
        images,
        len(areas),
        min(areas),
        float(np.percentile(areas, LOW_PERCENTILE)),
        float(np.median(areas)),
        min(thick),
        round(float(np.percentile(thick, LOW_PERCENTILE)), 1),
    )
