"""Region-of-interest rules: a region inside or touching a polygon, and a class's coverage of
a polygon. Polygons are in image pixels, or fractions of the image (see :func:`roi_points`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from inspect_core.errors import ImageError
from inspect_core.rules.engine import (
    RuleConfigError,
    RuleContext,
    _area,
    _check_common,
    _check_number,
    _class_list,
    _decision,
    _names,
    _pick,
    fired,
)
from inspect_core.types import Region, RuleHit


def roi_points(polygon: Any, units: str = "auto") -> tuple[np.ndarray, bool]:
    """Check a region-of-interest polygon; returns its points and whether they are fractions
    of the image size (see the module docstring for ``units``)."""
    if units not in ("auto", "px", "fraction"):
        raise RuleConfigError(f"units must be 'auto', 'px' or 'fraction', got {units!r}")
    try:
        pts = np.asarray(polygon, np.float64)
    except (TypeError, ValueError):
        pts = np.zeros((0,))
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3 or not np.isfinite(pts).all():
        raise RuleConfigError(
            f"a region of interest needs at least 3 [x, y] points, got {polygon!r}"
        )
    in_unit = bool((pts >= 0).all() and (pts <= 1).all())
    if units == "fraction":
        if not in_unit:
            raise RuleConfigError(
                f"polygon {polygon!r} has units = 'fraction' but coordinates outside 0..1"
            )
        return pts, True
    if units == "px":
        return pts, False
    if in_unit:
        return pts, True
    if np.abs(pts).max() <= 2:
        raise RuleConfigError(
            f"polygon {polygon!r}: coordinates this small look like fractions of the image, but "
            "fractions must lie within 0..1; fix them, or say units = 'px' or 'fraction'"
        )
    return pts, False


class RoiOutsideImage(RuleConfigError, ImageError):
    """A region of interest that misses this image (another camera's size): the image is
    recorded as ERROR with why, and the batch goes on with the next."""


def roi_mask(
    polygon: Sequence[Sequence[float]], shape: tuple[int, int], units: str = "auto"
) -> np.ndarray:
    """A filled polygon, in pixels or in fractions of the image (``units``)."""
    h, w = shape
    pts, fraction = roi_points(polygon, units)
    if fraction:
        pts = pts * [w - 1, h - 1]
    m = np.zeros((h, w), np.uint8)
    cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
    if not m.any():  # e.g. pixels of a larger camera: the rule could never fire
        raise RoiOutsideImage(
            f"the region of interest {polygon} lies outside the {w}x{h} image: a polygon in "
            "pixels of another image size (give it as fractions, units = 'fraction')"
        )
    return m.astype(bool)


def region_pixels(ctx: RuleContext, r: Region) -> np.ndarray:
    """The region's own pixels in its bounding box, without other regions of its class reaching
    into the box: its polygon's first point (on its outline) picks its 8-connected component."""
    x, y, w, h = r.bbox
    sub: np.ndarray = ctx.labels[y : y + h, x : x + w] == r.class_id
    if not r.polygon:
        return sub
    n, comp = cv2.connectedComponents(sub.astype(np.uint8), connectivity=8)
    if n <= 2:
        return sub
    px, py = r.polygon[0]
    if not (0 <= py - y < h and 0 <= px - x < w) or comp[py - y, px - x] == 0:
        return sub
    own: np.ndarray = comp == comp[py - y, px - x]
    return own


def _touches(roi: np.ndarray, ctx: RuleContext, r: Region) -> tuple[int, int]:
    """(pixels of the region inside the ROI, pixels of the region)."""
    x, y, w, h = r.bbox
    own = region_pixels(ctx, r)
    return int((roi[y : y + h, x : x + w] & own).sum()), int(own.sum())


@dataclass
class InRoi:
    """Fire for regions of ``classes`` (at least ``min_area``) inside or touching a polygon.

    ``mode = "touching"`` fires when any pixel of the region lies in the ROI; ``"inside"``
    needs the whole region inside. ``units``: see the module docstring.
    """

    polygon: list[list[float]] = field(default_factory=list)
    classes: list[str] | None = None
    mode: str = "touching"
    min_area: float = 0
    unit: str = "px"
    decision: str = "FAIL"
    name: str = "roi"
    units: str = "auto"

    def __post_init__(self) -> None:
        _check_common(self, min_area=self.min_area)
        roi_points(self.polygon, self.units)
        if self.mode not in ("touching", "inside"):
            raise RuleConfigError(f"mode must be 'touching' or 'inside', got {self.mode!r}")

    def __call__(self, ctx: RuleContext) -> list[RuleHit]:
        roi = roi_mask(self.polygon, ctx.shape, self.units)
        hit = []
        for i, r in _pick(ctx.regions, self.classes):
            if _area(r, self.unit) < self.min_area:
                continue
            inside, total = _touches(roi, ctx, r)
            if (self.mode == "touching" and inside > 0) or (
                self.mode == "inside" and inside == total
            ):
                hit.append((i, r))
        return fired(
            self, hit, f"{len(hit)} region(s) of {_names(hit)} {self.mode} the region of interest"
        )


@dataclass
class RoiCoverage:
    """Fire when ``classes`` together cover more than ``max_ratio`` (0..1) of the region of
    interest (the whole image when no polygon is given). The hit lists the regions of those
    classes that touch the ROI (none when the classes are not region classes)."""

    classes: list[str] = field(default_factory=list)
    max_ratio: float = 1.0
    polygon: list[list[float]] | None = None
    decision: str = "FAIL"
    name: str = "roi_coverage"
    units: str = "auto"

    def __post_init__(self) -> None:
        self.classes = _class_list(self.classes)
        _check_number("max_ratio", self.max_ratio, 0, 1)
        if self.polygon:  # none or [] = the whole image
            roi_points(self.polygon, self.units)
        _decision(self.decision)

    def __call__(self, ctx: RuleContext) -> list[RuleHit]:
        roi = (
            roi_mask(self.polygon, ctx.shape, self.units)
            if self.polygon
            else np.ones(ctx.shape, bool)
        )
        ids = [ctx.class_names.index(c) for c in self.classes if c in ctx.class_names]
        ratio = float((np.isin(ctx.labels, ids) & roi).sum()) / int(roi.sum())
        if ratio <= self.max_ratio:
            return []
        regs = [i for i, r in _pick(ctx.regions, self.classes) if _touches(roi, ctx, r)[0]]
        return [
            RuleHit(
                self.name,
                _decision(self.decision),
                f"{'+'.join(self.classes)} cover {ratio:.1%} of the region of interest "
                f"(limit {self.max_ratio:.1%})",
                regs,
            )
        ]
