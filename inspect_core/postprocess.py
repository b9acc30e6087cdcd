"""Post-processing as small composable steps (in the spirit of MONAI's post transforms).

Each step is a callable ``(labels, probs) -> labels`` on the argmax label map (H, W) uint8 and
the softmax probabilities (C, H, W). ``Compose`` chains them; ``extract_regions`` turns the
final label map into :class:`~inspect_core.types.Region` records.

Steps act on the classes they are given (default: every class but 0, the background). Pixels a
step removes become background; pixels it adds take the step's class.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from .types import Region

Step = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _classes(classes: Sequence[int] | None, probs: np.ndarray) -> list[int]:
    return list(classes) if classes is not None else list(range(1, probs.shape[0]))


def _kernel(size: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


@dataclass
class Open:
    """Morphological opening per class: removes specks and thin spurs narrower than ``size``."""

    size: int = 3
    classes: Sequence[int] | None = None

    def __call__(self, labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
        out = labels.copy()
        for c in _classes(self.classes, probs):
            m = (labels == c).astype(np.uint8)
            if not m.any():
                continue
            kept = cv2.morphologyEx(m, cv2.MORPH_OPEN, _kernel(self.size))
            out[(m == 1) & (kept == 0)] = 0
        return out


@dataclass
class Close:
    """Morphological closing per class: bridges gaps narrower than ``size`` in background."""

    size: int = 3
    classes: Sequence[int] | None = None

    def __call__(self, labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
        out = labels.copy()
        for c in _classes(self.classes, probs):
            m = (labels == c).astype(np.uint8)
            if not m.any():
                continue
            grown = cv2.morphologyEx(m, cv2.MORPH_CLOSE, _kernel(self.size))
            out[(grown == 1) & (out == 0)] = c
        return out


@dataclass
class FillHoles:
    """Fill background holes enclosed by one class (up to ``max_area`` px; 0 = any size)."""

    max_area: int = 0
    classes: Sequence[int] | None = None

    def __call__(self, labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
        out = labels.copy()
        for c in _classes(self.classes, probs):
            m = (labels == c).astype(np.uint8)
            if not m.any():
                continue
            # holes = background components of the inverted mask that do not touch the border
            inv = np.pad(1 - m, 1, constant_values=1)
            n, comp, stats, _ = cv2.connectedComponentsWithStats(inv, connectivity=4)
            border = comp[0, 0]
            for i in range(1, n):
                if i == border or (self.max_area and stats[i, cv2.CC_STAT_AREA] > self.max_area):
                    continue
                hole = comp[1:-1, 1:-1] == i
                out[hole & (out == 0)] = c
        return out


@dataclass
class MinArea:
    """Drop components smaller than a per-class minimum, in pixels or in mm² (given a pixel size).

    ``min_px`` / ``min_mm2`` map class index -> minimum; ``default_px`` applies to the others.
    """

    min_px: dict[int, float] = field(default_factory=dict)
    min_mm2: dict[int, float] = field(default_factory=dict)
    pixel_size_mm: float | None = None
    default_px: float = 0
    classes: Sequence[int] | None = None

    def threshold(self, c: int) -> float:
        t = self.min_px.get(c, self.default_px)
        if c in self.min_mm2:
            if not self.pixel_size_mm:
                raise ValueError(f"a minimum area in mm² for class {c} needs a pixel size (mm/px)")
            # rounded: mm² / (mm/px)² carries float noise (49 / 0.7**2 = 100.00000000000001 px
            # would drop a component of exactly the minimum)
            t = max(t, round(self.min_mm2[c] / self.pixel_size_mm**2, 6))
        return t

    def __call__(self, labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
        out = labels.copy()
        for c in _classes(self.classes, probs):
            t = self.threshold(c)
            m = (labels == c).astype(np.uint8)
            if t <= 0 or not m.any():
                continue
            n, comp, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
            small = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] < t]
            if small:
                out[np.isin(comp, small)] = 0
        return out


@dataclass
class Compose:
    steps: list[Step] = field(default_factory=list)

    def __call__(self, labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
        for step in self.steps:
            labels = step(labels, probs)
        return labels


def argmax_labels(probs: np.ndarray) -> np.ndarray:
    return probs.argmax(0).astype(np.uint8)


def extract_regions(labels: np.ndarray, probs: np.ndarray, class_names: Sequence[str],
                    classes: Iterable[int] | None = None, pixel_size_mm: float | None = None,
                    max_polygon_points: int = 64) -> list[Region]:
    """Connected components (8-connected) of each class into regions, largest first."""
    regions: list[Region] = []
    for c in (list(classes) if classes is not None else range(1, probs.shape[0])):
        m = (labels == c).astype(np.uint8)
        if not m.any():
            continue
        n, comp, stats, cents = cv2.connectedComponentsWithStats(m, connectivity=8)
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            sub = comp[y:y + h, x:x + w] == i
            p = probs[c, y:y + h, x:x + w][sub]
            contours, _ = cv2.findContours(sub.astype(np.uint8), cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_SIMPLE)
            poly = max(contours, key=cv2.contourArea) if contours else np.zeros((0, 1, 2), int)
            if len(poly) > max_polygon_points:
                eps = 0.005 * cv2.arcLength(poly, True)
                while len(poly) > max_polygon_points:
                    poly = cv2.approxPolyDP(poly, eps, True)
                    eps *= 1.5
            regions.append(Region(
                class_id=c, class_name=class_names[c], bbox=(x, y, w, h), area_px=area,
                centroid=(float(cents[i][0]), float(cents[i][1])),
                max_prob=float(p.max()), mean_prob=float(p.mean()),
                polygon=[(int(px) + x, int(py) + y) for px, py in poly.reshape(-1, 2)],
                area_mm2=area * pixel_size_mm**2 if pixel_size_mm else None,
            ))
    regions.sort(key=lambda r: -r.area_px)
    return regions


STEP_TYPES: dict[str, type] = {"open": Open, "close": Close, "fill_holes": FillHoles,
                               "min_area": MinArea}


def build_steps(spec: list[dict], pixel_size_mm: float | None = None) -> Compose:
    """Steps from a recipe, e.g. ``[{"type": "open", "size": 3}, {"type": "min_area", ...}]``."""
    steps = []
    for s in spec:
        s = dict(s)
        kind = s.pop("type", None)
        if kind not in STEP_TYPES:
            raise ValueError(f"unknown post-processing step {kind!r}; known: {', '.join(STEP_TYPES)}")
        if kind == "min_area":
            s.setdefault("pixel_size_mm", pixel_size_mm)
            for key in ("min_px", "min_mm2"):
                if key in s:
                    s[key] = {int(k): float(v) for k, v in s[key].items()}
        steps.append(STEP_TYPES[kind](**s))
    return Compose(steps)
