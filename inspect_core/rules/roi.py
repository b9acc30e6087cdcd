"""Region-of-interest rules: a region inside or touching a polygon, and a class's coverage of
a polygon. Polygons are in image pixels, or fractions of the image (see :func:`roi_points`)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from inspect_core.errors import ImageError
from inspect_core.rules.base import RuleConfigError, RuleContext
from inspect_core.rules.builtin import area, fired, names, pick
from inspect_core.rules.params import InRoiParams, RoiCoverageParams, roi_points
from inspect_core.types import Decision, Region, RuleHit

__all__ = ["InRoi", "RoiCoverage", "RoiOutsideImage", "roi_mask", "roi_points"]


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


class InRoi(InRoiParams):
    """Fire for regions of ``classes`` (at least ``min_area``) inside or touching a polygon.

    ``mode = "touching"`` fires when any pixel of the region lies in the ROI; ``"inside"``
    needs the whole region inside. ``units``: see :mod:`inspect_core.rules.builtin`.
    """

    name: str = "roi"

    def __call__(self, ctx: RuleContext) -> list[RuleHit]:
        roi = roi_mask(self.polygon, ctx.shape, self.units)
        hit = []
        for i, r in pick(ctx.regions, self.classes):
            if area(r, self.unit) < self.min_area:
                continue
            inside, total = _touches(roi, ctx, r)
            if (self.mode == "touching" and inside > 0) or (
                self.mode == "inside" and inside == total
            ):
                hit.append((i, r))
        return fired(
            self, hit, f"{len(hit)} region(s) of {names(hit)} {self.mode} the region of interest"
        )


class RoiCoverage(RoiCoverageParams):
    """Fire when ``classes`` together cover more than ``max_ratio`` (0..1) of the region of
    interest (the whole image when no polygon is given). The hit lists the regions of those
    classes that touch the ROI (none when the classes are not region classes)."""

    name: str = "roi_coverage"

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
        regs = [i for i, r in pick(ctx.regions, self.classes) if _touches(roi, ctx, r)[0]]
        return [
            RuleHit(
                self.name,
                Decision(self.decision),
                f"{'+'.join(self.classes)} cover {ratio:.1%} of the region of interest "
                f"(limit {self.max_ratio:.1%})",
                regs,
            )
        ]
