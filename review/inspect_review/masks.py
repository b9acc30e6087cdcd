"""The training mask of a reviewed image (8-bit class indices, 255 = ignore).

What the operator judged, and only that, becomes a label:

* a region or a drawn mark marked "not a defect" becomes background (0);
* a region confirmed as a defect keeps its class, or the class the operator gave it; a drawn
  mark gets its class;
* a region or mark marked "unsure", and every pixel no one judged, is 255 (ignored by
  training);
* a region whose outline the operator drew anew is background where the drawn mark does not
  cover it (the operator showed where the defect is), and the mark takes its place;
* an image decided PASS with no defect left is all background but for what is marked unsure:
  the operator looked at the whole part and found nothing.

Regions are filled from their outline (the outer contour, so a hole inside a region counts as
the region), or their box where no outline was recorded. Drawn marks are in the recorded
image's pixels and are scaled to the mask's frame (``scale``): polygons are filled, brush
strokes cover the pixels within half their width of their line (round ends). Background goes
first, then what is unsure, then the defects (regions, then marks), so where they overlap the
defect wins, and a drawn mark wins over a region. A class in ``unnamed`` (a good-only model's
``anomaly`` that no one named) is written as 255.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from inspect_db.errors import ReviewError
from inspect_review.storage.export import LabelledRegion
from inspect_review.storage.types import Mark

IGNORE = 255


def review_mask(
    shape: tuple[int, int],
    verdict: str,
    regions: list[LabelledRegion],
    classes: list[str],
    marks: Sequence[Mark] = (),
    scale: tuple[float, float] = (1.0, 1.0),
    unnamed: frozenset[str] = frozenset(),
) -> np.ndarray:
    """The mask (height, width) of an image decided ``verdict`` with these labelled regions
    and drawn ``marks`` (their points times ``scale``, (x, y), give mask pixels);
    :class:`ReviewError` for a defect class that is not in ``classes`` nor ``unnamed``."""
    h, w = shape
    redrawn = {m.replaces_region_id for m in marks if m.replaces_region_id is not None}
    kept = [r for r in regions if r.region_id not in redrawn]
    defects = [r for r in kept if r.label == "defect"]
    drawn = [m for m in marks if m.label == "defect"]
    if verdict == "PASS" and not defects and not drawn:
        mask = np.zeros((h, w), np.uint8)
    else:
        mask = np.full((h, w), IGNORE, np.uint8)
        for r in regions:
            if r.label == "not_defect" or r.region_id in redrawn:
                _fill(mask, r, 0)
        for m in marks:
            if m.label == "not_defect":
                _draw(mask, m, scale, 0)
    for r in kept:
        if r.label == "unsure":
            _fill(mask, r, IGNORE)
    for m in marks:
        if m.label == "unsure":
            _draw(mask, m, scale, IGNORE)
    # unnamed classes first: a named defect over them keeps its class
    for named in (False, True):
        for r in defects:
            name = r.class_name or r.model_class
            if (name not in unnamed) == named:
                _fill(mask, r, _value(name, classes, unnamed, f"region {r.region_id}"))
        for n, m in enumerate(marks, 1):
            name = m.class_name or ""
            if m.label == "defect" and (name not in unnamed) == named:
                _draw(mask, m, scale, _value(name, classes, unnamed, f"drawn mark {n}"))
    return mask


def _value(name: str, classes: list[str], unnamed: frozenset[str], what: str) -> int:
    if name in unnamed:
        return IGNORE
    if name not in classes or classes.index(name) == 0:
        raise ReviewError(
            f"{what} is labelled {name!r}, which is not a defect class of the export "
            f"({', '.join(classes[1:])}); export one recipe at a time (--recipe)"
        )
    return classes.index(name)


def _fill(mask: np.ndarray, r: LabelledRegion, value: int) -> None:
    if len(r.polygon) >= 1:
        pts = np.asarray(r.polygon, np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(mask, [pts], int(value))
        cv2.polylines(mask, [pts], True, int(value), 1)  # a one-pixel-wide region too
        return
    x, y, bw, bh = r.bbox
    if bw > 0 and bh > 0:
        mask[max(0, y) : y + bh, max(0, x) : x + bw] = value


def _draw(mask: np.ndarray, m: Mark, scale: tuple[float, float], value: int) -> None:
    """A drawn mark in the mask: a polygon filled (its edge too), a stroke as the pixels
    within half its width (in the mask's pixels) of its line: a w-pixel brush covers w rows
    across a line (w + 1 for an even w), with round ends."""
    sx, sy = scale
    pts = np.asarray([[round(x * sx), round(y * sy)] for x, y in m.points], np.int32)
    if not len(pts):
        return
    if m.kind == "polygon":
        cv2.fillPoly(mask, [pts.reshape(-1, 1, 2)], int(value))
        cv2.polylines(mask, [pts.reshape(-1, 1, 2)], True, int(value), 1)
        return
    half = max(0.5, (m.width or 1.0) * (sx + sy) / 4)
    pad = int(np.ceil(half)) + 1
    x0, y0 = pts.min(axis=0) - pad  # a box around the stroke, which may reach past the mask
    x1, y1 = pts.max(axis=0) + pad + 1
    line = np.full((y1 - y0, x1 - x0), 255, np.uint8)  # 0 on the stroke's centre line
    local = pts - [x0, y0]
    cv2.polylines(line, [local.reshape(-1, 1, 2)], False, 0, 1)
    line[local[:, 1], local[:, 0]] = 0  # a stroke of one point (a dab) too
    near = cv2.distanceTransform(line, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) <= half
    h, w = mask.shape
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if cx0 < cx1 and cy0 < cy1:
        part = near[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        mask[cy0:cy1, cx0:cx1][part] = value
