"""The training mask of a reviewed image (8-bit class indices, 255 = ignore).

What the operator judged, and only that, becomes a label:

* a region marked "not a defect" becomes background (0);
* a region confirmed as a defect keeps its class, or the class the operator gave it;
* a region marked "unsure", and every pixel no one judged, is 255 (ignored by training);
* an image decided PASS with no defect left is all background: the operator looked at the
  whole part and found nothing.

Regions are filled from their outline (the outer contour, so a hole inside a region counts as
the region), or their box where no outline was recorded. Defects are drawn after the
"not a defect" regions, so where two overlap the defect wins.
"""

from __future__ import annotations

import cv2
import numpy as np

from inspect_db.errors import ReviewError
from inspect_review.storage.export import LabelledRegion

IGNORE = 255


def review_mask(
    shape: tuple[int, int], verdict: str, regions: list[LabelledRegion], classes: list[str]
) -> np.ndarray:
    """The mask (height, width) of an image decided ``verdict`` with these labelled regions;
    :class:`ReviewError` for a defect class that is not in ``classes``."""
    h, w = shape
    defects = [r for r in regions if r.label == "defect"]
    if verdict == "PASS" and not defects:
        return np.zeros((h, w), np.uint8)
    mask = np.full((h, w), IGNORE, np.uint8)
    for r in regions:
        if r.label == "not_defect":
            _fill(mask, r, 0)
    for r in defects:
        name = r.class_name or r.model_class
        if name not in classes or classes.index(name) == 0:
            raise ReviewError(
                f"region {r.region_id} is labelled {name!r}, which is not a defect class of "
                f"the model ({', '.join(classes[1:])}); export one recipe at a time (--recipe)"
            )
        _fill(mask, r, classes.index(name))
    return mask


def _fill(mask: np.ndarray, r: LabelledRegion, value: int) -> None:
    if len(r.polygon) >= 1:
        pts = np.asarray(r.polygon, np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(mask, [pts], int(value))
        cv2.polylines(mask, [pts], True, int(value), 1)  # a one-pixel-wide region too
        return
    x, y, bw, bh = r.bbox
    if bw > 0 and bh > 0:
        mask[max(0, y) : y + bh, max(0, x) : x + bw] = value
