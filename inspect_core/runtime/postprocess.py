"""Post-processing as small composable steps (in the spirit of MONAI's post transforms).

Each step is a callable ``(labels, probs) -> labels`` on the argmax label map (H, W) uint8 and
the softmax probabilities (C, H, W). ``Compose`` chains them; ``extract_regions`` turns the
final label map into :class:`~inspect_core.types.Region` records.

Steps act on the classes they are given (default: every class but 0, the background). Pixels a
step removes become background; pixels it adds take the step's class.

Cost: every step works on one class at a time, skips the classes absent from the label map and
runs OpenCV only on the bounding box of a class's pixels (with the margin the operation needs
to give the same result as on the whole image), so a label map with a few small defects costs
a few tens of microseconds per step. ``RemoveSmallRegions`` hands the components it has
labelled to ``extract_regions`` through :meth:`Compose.run`, so a recipe ending with
``remove_small`` labels each class once. ``tests/runtime/test_postprocess_fast.py`` checks all
of it against the plain whole-image computations.

Recipes name the steps ``open``, ``close``, ``fill_holes`` and ``remove_small``
(:data:`STEP_TYPES`). ``remove_small`` was called ``min_area`` before; that name is still
accepted (:data:`inspect_core.params.ALIASES`), but it is also the name of a rule that does
the opposite (it fires for regions at least that large), so recipes use ``remove_small``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar

import cv2
import numpy as np

from inspect_core.params import construct, parse
from inspect_core.types import Region

Step = Callable[[np.ndarray, np.ndarray], np.ndarray]
Box = tuple[int, int, int, int]  # x, y, width, height


def _classes(classes: Sequence[int] | None, probs: np.ndarray) -> list[int]:
    return list(classes) if classes is not None else list(range(1, probs.shape[0]))


@lru_cache(maxsize=16)
def _kernel(size: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    k.flags.writeable = False  # shared between calls
    return k


def _class_mask(labels: np.ndarray, c: int) -> tuple[np.ndarray, Box]:
    """The 0/1 uint8 mask of class ``c`` and the bounding box of its pixels (width 0: absent)."""
    m = (labels == c).view(np.uint8)
    x, y, w, h = cv2.boundingRect(m)
    return m, (x, y, w, h)


def _grow(box: Box, pad: int, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``box`` grown by ``pad`` on every side, clipped to the image: y0, y1, x0, x1."""
    x, y, w, h = box
    return max(y - pad, 0), min(y + h + pad, shape[0]), max(x - pad, 0), min(x + w + pad, shape[1])


def _margin(kernel: np.ndarray) -> int:
    """Margin around a class's box for a morphological opening or closing to match the whole
    image's: more than twice the kernel's reach. Beyond the box the mask is 0, so the box's
    edges (where OpenCV's default border applies) are then too far away to change a result."""
    reach: int = max(kernel.shape)
    return 2 * reach + 1


@dataclass
class _Morphology(ABC):
    """What :class:`Open` and :class:`Close` share: per class, one OpenCV morphological
    operation (``op``) with an elliptic kernel of ``size`` px, run on the class's bounding box
    (with the margin that keeps the result the whole image's); ``_apply`` writes the change."""

    size: int = 3
    classes: Sequence[int] | None = None
    op: ClassVar[int]

    def __call__(self, labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
        out = labels.copy()
        for c in _classes(self.classes, probs):
            m, box = _class_mask(labels, c)
            if not box[2]:
                continue
            k = _kernel(self.size)
            y0, y1, x0, x1 = _grow(box, _margin(k), m.shape)
            sub = m[y0:y1, x0:x1]
            self._apply(out[y0:y1, x0:x1], sub, cv2.morphologyEx(sub, self.op, k), c)
        return out

    @abstractmethod
    def _apply(self, out: np.ndarray, before: np.ndarray, after: np.ndarray, c: int) -> None:
        """Write the step's result for class ``c`` into ``out`` (opening or closing)."""


class Open(_Morphology):
    """Morphological opening per class: removes specks and thin spurs narrower than ``size``."""

    op = cv2.MORPH_OPEN

    def _apply(self, out: np.ndarray, before: np.ndarray, after: np.ndarray, c: int) -> None:
        out[before > after] = 0  # in the class, not kept by the opening


class Close(_Morphology):
    """Morphological closing per class: bridges gaps narrower than ``size`` in background."""

    op = cv2.MORPH_CLOSE

    def _apply(self, out: np.ndarray, before: np.ndarray, after: np.ndarray, c: int) -> None:
        out[(after != 0) & (out == 0)] = c


@dataclass
class FillHoles:
    """Fill background holes enclosed by one class (up to ``max_area`` px; 0 = any size)."""

    max_area: int = 0
    classes: Sequence[int] | None = None

    def __call__(self, labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
        out = labels.copy()
        for c in _classes(self.classes, probs):
            m, (x, y, w, h) = _class_mask(labels, c)
            if not w:
                continue
            # holes = components of the inverted mask (4-connected) that do not touch the
            # border. A hole lies inside the bounding box of the class's pixels and does not
            # touch the box's edge either, so the box (padded with 1s) is enough.
            inv = np.ones((h + 2, w + 2), np.uint8)
            np.subtract(1, m[y : y + h, x : x + w], out=inv[1:-1, 1:-1])
            n, comp = cv2.connectedComponents(inv, connectivity=4)
            if n <= 2:  # label 0 (the class) and the border's component: no hole
                continue
            fill = np.ones(n, bool)
            fill[0] = fill[comp[0, 0]] = False
            if self.max_area:
                fill &= np.bincount(comp.ravel(), minlength=n) <= self.max_area
            if not fill.any():
                continue
            o = out[y : y + h, x : x + w]
            o[fill[comp[1:-1, 1:-1]] & (o == 0)] = c
        return out


@dataclass
class Components:
    """The 8-connected components of one class's mask, exactly as
    ``cv2.connectedComponentsWithStats(mask, connectivity=8)`` gives them for the whole image
    (same order, bounding boxes, areas and centroids), labelled on the bounding box of the
    class's pixels.

    ``labels``: the components' int32 label map of the box whose top-left corner is
    ``(x0, y0)``; ``stats`` and ``centroids``: OpenCV's rows in image coordinates (row 0, the
    background, is not meaningful); ``ids``: the components that are in the label map, in order.
    """

    x0: int
    y0: int
    labels: np.ndarray
    stats: np.ndarray
    centroids: np.ndarray
    ids: list[int]

    @classmethod
    def of(cls, mask: np.ndarray, box: Box) -> Components:
        x, y, w, h = box
        # OpenCV labels 2x2 blocks from the image origin and numbers components in the order
        # their first block is met; an even box origin keeps that order the whole image's.
        x0, y0 = x & ~1, y & ~1
        n, comp, stats, cents = cv2.connectedComponentsWithStats(
            mask[y0 : y + h, x0 : x + w], connectivity=8
        )
        if x0 or y0:
            stats[:, cv2.CC_STAT_LEFT] += x0
            stats[:, cv2.CC_STAT_TOP] += y0
            # OpenCV's centroid is (integer sum of coordinates) / area, correctly rounded; the
            # box's sum is recovered exactly (< 2**51) and shifted, so the division is the same
            area = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
            for j, shift in ((0, x0), (1, y0)):
                cents[1:, j] = (np.rint(cents[1:, j] * area) + shift * area) / area
        return cls(x0, y0, comp, stats, cents, list(range(1, n)))


@dataclass
class RemoveSmallRegions:
    """Remove components smaller than a per-class minimum, in pixels or in mm² (given a pixel
    size): their pixels become background. A recipe's ``type = "remove_small"`` (formerly
    ``"min_area"``, still accepted).

    ``min_px`` / ``min_mm2`` map class index -> minimum; ``default_px`` applies to the others.
    """

    min_px: dict[int, float] = field(default_factory=dict)
    min_mm2: dict[int, float] = field(default_factory=dict)
    pixel_size_mm: float | None = None
    default_px: float = 0
    classes: Sequence[int] | None = None

    def threshold(self, c: int) -> float:
        # default_px is for the classes with no minimum of their own (in px or in mm²)
        t = self.min_px.get(c, 0 if c in self.min_mm2 else self.default_px)
        if c in self.min_mm2:
            if not self.pixel_size_mm:
                raise ValueError(f"a minimum area in mm² for class {c} needs a pixel size (mm/px)")
            # rounded: mm² / (mm/px)² carries float noise (49 / 0.7**2 = 100.00000000000001 px
            # would drop a component of exactly the minimum)
            t = max(t, round(self.min_mm2[c] / self.pixel_size_mm**2, 6))
        return t

    def __call__(self, labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
        return self.apply(labels, probs)

    def apply(
        self, labels: np.ndarray, probs: np.ndarray, found: dict[int, Components] | None = None
    ) -> np.ndarray:
        """As calling the step; also puts into ``found`` the :class:`Components` of each
        foreground class it labelled, as they are in the returned label map."""
        out = labels.copy()
        for c in _classes(self.classes, probs):
            t = self.threshold(c)
            if t <= 0:
                continue
            m, box = _class_mask(labels, c)
            if not box[2]:
                continue
            comps = Components.of(m, box)
            small = comps.stats[:, cv2.CC_STAT_AREA] < t
            small[0] = False
            if small.any():
                h, w = comps.labels.shape
                out[comps.y0 : comps.y0 + h, comps.x0 : comps.x0 + w][small[comps.labels]] = 0
                comps.ids = [i for i in comps.ids if not small[i]]
            if found is not None and c != 0:  # removed background stays background
                found[c] = comps
        return out


@dataclass
class Compose:
    steps: list[Step] = field(default_factory=list)

    def __call__(self, labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
        return self.run(labels, probs)[0]

    def run(
        self, labels: np.ndarray, probs: np.ndarray
    ) -> tuple[np.ndarray, dict[int, Components]]:
        """The final label map, and the components of the classes a last
        :class:`RemoveSmallRegions` step labelled (for :func:`extract_regions`; valid while the
        label map is not changed)."""
        found: dict[int, Components] = {}
        for step in self.steps:
            found = {}
            if (
                isinstance(step, RemoveSmallRegions)
                and type(step).__call__ is RemoveSmallRegions.__call__
            ):
                labels = step.apply(labels, probs, found)
            else:
                labels = step(labels, probs)
        return labels, found


def argmax_labels(probs: np.ndarray) -> np.ndarray:
    """``probs.argmax(0)`` as uint8: the most probable class per pixel, the first on a tie."""
    c = probs.shape[0] if probs.ndim == 3 else 0
    if not (
        1 <= c <= 256
        and probs.dtype in (np.float32, np.float64)
        and probs.size
        and probs.flags.c_contiguous
    ):
        return _numpy_argmax(probs)
    # one pass per class instead of numpy's per-pixel loop over the class axis: a class takes
    # a pixel when it beats every class before it (strictly: ties keep the first), so the
    # label is the last such class, i.e. the largest
    best = probs[0].copy()
    labels = np.zeros(probs.shape[1:], np.uint8)
    for k in range(1, c):
        beats = cv2.compare(probs[k], best, cv2.CMP_GT)  # 255 / 0
        cv2.max(labels, cv2.min(beats, k), dst=labels)
        np.maximum(best, probs[k], out=best)
    if np.isnan(best.max()):  # argmax picks the first NaN; rare enough to leave to numpy
        return _numpy_argmax(probs)
    return labels


def _numpy_argmax(probs: np.ndarray) -> np.ndarray:
    labels: np.ndarray = probs.argmax(0).astype(np.uint8)
    return labels


def extract_regions(
    labels: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str],
    classes: Iterable[int] | None = None,
    pixel_size_mm: float | None = None,
    max_polygon_points: int = 64,
    components: dict[int, Components] | None = None,
) -> list[Region]:
    """Connected components (8-connected) of each class into regions, largest first.

    ``components``: already labelled classes of this very label map (as :meth:`Compose.run`
    returns them); the other classes are labelled here."""
    regions: list[Region] = []
    for c in list(classes) if classes is not None else range(1, probs.shape[0]):
        comps = components.get(c) if components else None
        if comps is None:
            m, box = _class_mask(labels, c)
            if not box[2]:
                continue
            comps = Components.of(m, box)
        for i in comps.ids:
            x, y, w, h, area = (int(v) for v in comps.stats[i])
            by, bx = y - comps.y0, x - comps.x0
            sub = comps.labels[by : by + h, bx : bx + w] == i
            p = probs[c, y : y + h, x : x + w][sub]
            contours, _ = cv2.findContours(
                sub.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
            )
            poly = max(contours, key=cv2.contourArea) if contours else np.zeros((0, 1, 2), int)
            if len(poly) > max_polygon_points:
                eps = 0.005 * cv2.arcLength(poly, True)
                while len(poly) > max_polygon_points:
                    poly = cv2.approxPolyDP(poly, eps, True)
                    eps *= 1.5
            cx, cy = comps.centroids[i]
            regions.append(
                Region(
                    class_id=c,
                    class_name=class_names[c],
                    bbox=(x, y, w, h),
                    area_px=area,
                    centroid=(float(cx), float(cy)),
                    max_prob=float(p.max()),
                    mean_prob=float(p.mean()),
                    polygon=[(int(px) + x, int(py) + y) for px, py in poly.reshape(-1, 2)],
                    area_mm2=area * pixel_size_mm**2 if pixel_size_mm else None,
                )
            )
    regions.sort(key=lambda r: -r.area_px)
    return regions


# the recipe's ``type`` of each step; ``min_area`` is still read as ``remove_small``
# (:data:`inspect_core.params.ALIASES`)
STEP_TYPES: dict[str, Callable[..., Step]] = {
    "open": Open,
    "close": Close,
    "fill_holes": FillHoles,
    "remove_small": RemoveSmallRegions,
}


def build_steps(spec: list[dict[str, Any]], pixel_size_mm: float | None = None) -> Compose:
    """Steps from a recipe's ``[[postprocess]]`` tables, e.g. ``{"type": "open", "size": 3}``;
    ``pixel_size_mm`` is ``remove_small``'s default (for ``min_mm2``)."""
    steps = []
    for n, table in enumerate(spec):
        kind, s = parse(n, table, STEP_TYPES, "postprocess", "post-processing step")
        if kind == "remove_small":
            s.setdefault("pixel_size_mm", pixel_size_mm)
            for key in ("min_px", "min_mm2"):
                if key in s:
                    s[key] = {int(k): float(v) for k, v in s[key].items()}
        steps.append(construct(STEP_TYPES[kind], s, f"postprocess[{n}] ({table['type']})"))
    return Compose(steps)
