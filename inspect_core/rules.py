"""Rules: turn regions into a PASS / REVIEW / FAIL verdict.

A rule is a callable ``rule(ctx: RuleContext) -> list[RuleHit]``. Rules are built from plain
config (a recipe's ``[[rules]]`` tables, overridden per station) by factories registered through
the ``register_rules`` hook; the built-in ones below are registered by the core that way.

Classes are named, areas are in pixels (``px``) or square millimetres (``mm2``, needing the
pixel size), regions of interest are polygons in image pixels ``[[x, y], ...]``, or fractions of
the image size when every coordinate is within 0..1.

The verdict is the most severe decision among the hits; PASS when nothing fired. The
``review_band`` rule is applied last: a FAIL whose regions all have a confidence inside the band
becomes REVIEW (an operator looks before the part is scrapped).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from .types import Decision, Region, RuleHit, Verdict


@dataclass
class RuleContext:
    regions: list[Region]
    labels: np.ndarray  # (H, W) class indices after post-processing
    class_names: list[str]
    pixel_size_mm: float | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape[:2]


class RuleConfigError(ValueError):
    """A rule's configuration is invalid (unknown class, missing pixel size...)."""


def _decision(value: str) -> Decision:
    try:
        return Decision(value.upper())
    except ValueError:
        raise RuleConfigError(f"decision must be PASS, REVIEW or FAIL, got {value!r}") from None


def _area(r: Region, unit: str) -> float:
    if unit == "px":
        return r.area_px
    if r.area_mm2 is None:
        raise RuleConfigError("an area in mm2 needs the pixel size (pixel_size_mm) of the station")
    return r.area_mm2


def _fmt_area(v: float, unit: str) -> str:
    return f"{v:.0f} px" if unit == "px" else f"{v:.3f} mm²"


def _pick(regions: list[Region], classes: Sequence[str] | None) -> list[tuple[int, Region]]:
    return [(i, r) for i, r in enumerate(regions) if classes is None or r.class_name in classes]


def _check_classes(classes, names: list[str] | None, rule: str) -> None:
    if classes is None or names is None:
        return
    unknown = [c for c in classes if c not in names]
    if unknown:
        raise RuleConfigError(f"rule {rule}: unknown class(es) {unknown}; the model knows {names}")


@dataclass
class MinArea:
    """Fire for every region of ``classes`` whose area is at least ``min`` (px or mm2)."""

    classes: list[str] | None = None
    min: float = 0
    unit: str = "px"
    decision: str = "FAIL"
    name: str = "min_area"

    def __call__(self, ctx: RuleContext) -> list[RuleHit]:
        hit = [(i, r) for i, r in _pick(ctx.regions, self.classes) if _area(r, self.unit) >= self.min]
        if not hit:
            return []
        largest = max(_area(r, self.unit) for _, r in hit)
        return [RuleHit(self.name, _decision(self.decision),
                        f"{len(hit)} region(s) of {_names(hit)} at or above "
                        f"{_fmt_area(self.min, self.unit)} (largest {_fmt_area(largest, self.unit)})",
                        [i for i, _ in hit])]


@dataclass
class MaxArea:
    """Fire when a region of ``classes`` is larger than ``max`` (px or mm2)."""

    classes: list[str] | None = None
    max: float = 0
    unit: str = "px"
    decision: str = "FAIL"
    name: str = "max_area"

    def __call__(self, ctx: RuleContext) -> list[RuleHit]:
        hit = [(i, r) for i, r in _pick(ctx.regions, self.classes) if _area(r, self.unit) > self.max]
        if not hit:
            return []
        return [RuleHit(self.name, _decision(self.decision),
                        f"{len(hit)} region(s) of {_names(hit)} larger than "
                        f"{_fmt_area(self.max, self.unit)}", [i for i, _ in hit])]


@dataclass
class MaxCount:
    """Fire when there are more than ``max`` regions of ``classes``."""

    classes: list[str] | None = None
    max: int = 0
    decision: str = "FAIL"
    name: str = "max_count"

    def __call__(self, ctx: RuleContext) -> list[RuleHit]:
        hit = _pick(ctx.regions, self.classes)
        if len(hit) <= self.max:
            return []
        return [RuleHit(self.name, _decision(self.decision),
                        f"{len(hit)} region(s) of {_names(hit)}, more than {self.max}",
                        [i for i, _ in hit])]


def roi_mask(polygon: Sequence[Sequence[float]], shape: tuple[int, int]) -> np.ndarray:
    """A filled polygon (pixels, or fractions of the image when all coordinates are <= 1)."""
    h, w = shape
    pts = np.asarray(polygon, np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
        raise RuleConfigError(f"a region of interest needs at least 3 [x, y] points, got {polygon!r}")
    if (pts >= 0).all() and (pts <= 1).all():
        pts = pts * [w - 1, h - 1]
    m = np.zeros((h, w), np.uint8)
    cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
    return m.astype(bool)


@dataclass
class InRoi:
    """Fire for regions of ``classes`` (at least ``min_area`` px) inside or touching a polygon.

    ``mode = "touching"`` fires when any pixel lies in the ROI; ``"inside"`` needs the whole
    region inside.
    """

    polygon: list[list[float]] = field(default_factory=list)
    classes: list[str] | None = None
    mode: str = "touching"
    min_area: float = 0
    unit: str = "px"
    decision: str = "FAIL"
    name: str = "roi"

    def __call__(self, ctx: RuleContext) -> list[RuleHit]:
        if self.mode not in ("touching", "inside"):
            raise RuleConfigError(f"rule {self.name}: mode must be 'touching' or 'inside'")
        roi = roi_mask(self.polygon, ctx.shape)
        hit = []
        for i, r in _pick(ctx.regions, self.classes):
            if _area(r, self.unit) < self.min_area:
                continue
            x, y, w, h = r.bbox
            sub = ctx.labels[y:y + h, x:x + w] == r.class_id
            inside = roi[y:y + h, x:x + w] & sub
            if (self.mode == "touching" and inside.any()) or \
               (self.mode == "inside" and inside.sum() == sub.sum()):
                hit.append((i, r))
        if not hit:
            return []
        return [RuleHit(self.name, _decision(self.decision),
                        f"{len(hit)} region(s) of {_names(hit)} {self.mode} the region of interest",
                        [i for i, _ in hit])]


@dataclass
class RoiCoverage:
    """Fire when ``classes`` together cover more than ``max_ratio`` of the region of interest
    (the whole image when no polygon is given)."""

    classes: list[str] = field(default_factory=list)
    max_ratio: float = 1.0
    polygon: list[list[float]] | None = None
    decision: str = "FAIL"
    name: str = "roi_coverage"

    def __call__(self, ctx: RuleContext) -> list[RuleHit]:
        roi = roi_mask(self.polygon, ctx.shape) if self.polygon else np.ones(ctx.shape, bool)
        ids = [ctx.class_names.index(c) for c in self.classes if c in ctx.class_names]
        covered = np.isin(ctx.labels, ids) & roi
        ratio = float(covered.sum()) / max(1, int(roi.sum()))
        if ratio <= self.max_ratio:
            return []
        regs = [i for i, r in _pick(ctx.regions, self.classes)]
        return [RuleHit(self.name, _decision(self.decision),
                        f"{'+'.join(self.classes)} cover {ratio:.1%} of the region of interest "
                        f"(limit {self.max_ratio:.1%})", regs)]


@dataclass
class ReviewBand:
    """Regions whose confidence (``mean_prob`` or ``max_prob``) lies in [low, high) are
    uncertain: a FAIL resting only on such regions becomes REVIEW."""

    low: float = 0.5
    high: float = 0.8
    on: str = "mean_prob"
    name: str = "review_band"
    adjusts_verdict = True

    def uncertain(self, r: Region) -> bool:
        v = getattr(r, self.on)
        return self.low <= v < self.high

    def __call__(self, ctx: RuleContext) -> list[RuleHit]:
        return []

    def adjust(self, hits: list[RuleHit], ctx: RuleContext) -> list[RuleHit]:
        out = []
        for h in hits:
            if h.decision == Decision.FAIL and h.regions and \
                    all(self.uncertain(ctx.regions[i]) for i in h.regions):
                out.append(RuleHit(h.rule, Decision.REVIEW, h.message + f" (confidence in "
                                   f"[{self.low}, {self.high}): review)", h.regions))
            else:
                out.append(h)
        return out


def _names(hit: list[tuple[int, Region]]) -> str:
    return ", ".join(sorted({r.class_name for _, r in hit}))


BUILTIN_RULES: dict[str, Callable[..., Any]] = {
    "min_area": MinArea, "max_area": MaxArea, "max_count": MaxCount, "roi": InRoi,
    "roi_coverage": RoiCoverage, "review_band": ReviewBand,
}


def build_rules(specs: list[dict], factories: dict[str, Callable],
                class_names: list[str] | None = None) -> list[Callable]:
    """Rules from config tables ``{"type": "min_area", "classes": [...], ...}``."""
    rules = []
    for n, spec in enumerate(specs):
        spec = dict(spec)
        kind = spec.pop("type", None)
        if kind not in factories:
            raise RuleConfigError(f"rules[{n}]: unknown rule type {kind!r}; "
                                  f"known: {', '.join(sorted(factories))}")
        spec.setdefault("name", kind)
        _check_classes(spec.get("classes"), class_names, spec["name"])
        try:
            rules.append(factories[kind](**spec))
        except TypeError as e:
            raise RuleConfigError(f"rules[{n}] ({kind}): {e}") from None
    return rules


def judge(ctx: RuleContext, rules: list[Callable], coverage: dict[str, float] | None = None) -> Verdict:
    """Run every rule and combine their hits into a verdict."""
    hits: list[RuleHit] = []
    for rule in rules:
        if not getattr(rule, "adjusts_verdict", False):
            hits.extend(rule(ctx))
    for rule in rules:
        if getattr(rule, "adjusts_verdict", False):
            hits = rule.adjust(hits, ctx)
    decision = max((h.decision for h in hits), key=lambda d: d.severity, default=Decision.PASS)
    return Verdict(decision, hits, ctx.regions, coverage or {})
