"""The built-in region rules: ``min_area``, ``max_area``, ``max_count`` and ``review_band``
(the region-of-interest rules are in :mod:`.roi`). Each derives from its parameters
(:mod:`.params`), so it is checked as it is built; a built rule is called on every image.

Semantics:

- ``classes`` are model class names. ``min_area``, ``max_area``, ``max_count`` and ``roi`` judge
  *regions*, which exist only for the recipe's ``region_classes``: naming another class there
  is refused (such a rule could never fire).
- Areas are in pixels (``unit = "px"``) of the image the model sees (after preprocessing), or
  in mm² (``unit = "mm2"``, needs ``pixel_size_mm``). Minimums fire at ``>=`` (a region of
  exactly ``min`` fires); maximums (``max_area``, ``max_count``, ``roi_coverage``) at ``>``.
- A region of interest is a polygon ``[[x, y], ...]`` (3+ points) with ``units = "px"`` or
  ``"fraction"`` (of width and height, 0..1: survives a new camera resolution or a resize).
  The default ``"auto"`` reads all-within-0..1 as fractions (in pixels it would be at most
  2x2 px), any coordinate above 2 as pixels, and refuses the rest (``1.05``: an overshooting
  fraction?), asking for explicit ``units``.
- ``roi_coverage``: the share of the ROI whose *pixels* (label map) are of ``classes``,
  compared with ``max_ratio``; none of them means 0, which never fires.
- ``review_band`` is applied last: a FAIL whose regions all have a confidence in
  ``[low, high)`` becomes REVIEW; at or above ``high``, and below ``low``, the FAIL stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from inspect_core.rules.base import RuleConfigError, RuleContext
from inspect_core.rules.params import (
    ANOMALY_CLASS,
    MaxAreaParams,
    MaxCountParams,
    MinAreaParams,
    ReviewBandParams,
)
from inspect_core.types import Decision, Region, RuleHit


def area(r: Region, unit: str) -> float:
    if unit == "px":
        return r.area_px
    if r.area_mm2 is None:
        raise RuleConfigError("an area in mm2 needs the pixel size (pixel_size_mm) of the station")
    # px * (mm/px)**2 carries float noise (0.7**2 = 0.48999...): a region of exactly the
    # threshold must compare equal to it
    return round(r.area_mm2, 9)


def fmt_area(v: float, unit: str) -> str:
    return f"{v:.0f} px" if unit == "px" else f"{v:.3f} mm²"


def pick(regions: list[Region], classes: Sequence[str] | None) -> list[tuple[int, Region]]:
    return [(i, r) for i, r in enumerate(regions) if classes is None or r.class_name in classes]


def names(hit: list[tuple[int, Region]]) -> str:
    return ", ".join(sorted({r.class_name for _, r in hit}))


def fired(rule: Any, hit: list[tuple[int, Region]], message: str) -> list[RuleHit]:
    """The one hit of a region rule (``rule.name``, its decision: :func:`decision_of`) over
    the regions ``hit`` (index, region), or none when ``hit`` is empty."""
    if not hit:
        return []
    return [RuleHit(rule.name, decision_of(rule, hit), message, [i for i, _ in hit])]


def decision_of(rule: Any, hit: list[tuple[int, Region]]) -> Decision:
    """The rule's ``decision``; unset, REVIEW when every region of ``hit`` is class
    ``anomaly`` (a good-only model's), else FAIL."""
    if rule.decision is not None:
        return Decision(rule.decision)
    if hit and all(r.class_name == ANOMALY_CLASS for _, r in hit):
        return Decision.REVIEW
    return Decision.FAIL


class MinArea(MinAreaParams):
    """Fire for every region of ``classes`` whose area is at least ``min`` (px or mm2)."""

    name: str = "min_area"

    def __call__(self, ctx: RuleContext) -> list[RuleHit]:
        hit = [(i, r) for i, r in pick(ctx.regions, self.classes) if area(r, self.unit) >= self.min]
        if not hit:
            return []
        largest = max(area(r, self.unit) for _, r in hit)
        return fired(
            self,
            hit,
            f"{len(hit)} region(s) of {names(hit)} at or above "
            f"{fmt_area(self.min, self.unit)} (largest {fmt_area(largest, self.unit)})",
        )


class MaxArea(MaxAreaParams):
    """Fire when a region of ``classes`` is larger than ``max`` (px or mm2)."""

    name: str = "max_area"

    def __call__(self, ctx: RuleContext) -> list[RuleHit]:
        hit = [(i, r) for i, r in pick(ctx.regions, self.classes) if area(r, self.unit) > self.max]
        limit = fmt_area(self.max, self.unit)
        return fired(self, hit, f"{len(hit)} region(s) of {names(hit)} larger than {limit}")


class MaxCount(MaxCountParams):
    """Fire when there are more than ``max`` regions of ``classes``."""

    name: str = "max_count"

    def __call__(self, ctx: RuleContext) -> list[RuleHit]:
        hit = pick(ctx.regions, self.classes)
        if len(hit) <= self.max:
            return []
        return fired(self, hit, f"{len(hit)} region(s) of {names(hit)}, more than {self.max}")


class ReviewBand(ReviewBandParams):
    """Regions whose confidence (``mean_prob`` or ``max_prob``) lies in [low, high) are
    uncertain: a FAIL resting only on such regions becomes REVIEW. At or above ``high`` the FAIL
    stands; below ``low`` too (``low = 0`` sends every FAIL below ``high`` to review)."""

    name: str = "review_band"
    adjusts_verdict: ClassVar[bool] = True

    def uncertain(self, r: Region) -> bool:
        v: float = getattr(r, self.on)
        return self.low <= v < self.high

    def __call__(self, ctx: RuleContext) -> list[RuleHit]:
        return []

    def adjust(self, hits: list[RuleHit], ctx: RuleContext) -> list[RuleHit]:
        out = []
        for h in hits:
            if (
                h.decision == Decision.FAIL
                and h.regions
                and all(self.uncertain(ctx.regions[i]) for i in h.regions)
            ):
                note = f" (confidence in [{self.low}, {self.high}): review)"
                out.append(RuleHit(h.rule, Decision.REVIEW, h.message + note, h.regions))
            else:
                out.append(h)
        return out
