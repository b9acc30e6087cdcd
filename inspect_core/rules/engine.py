"""Rules: turn regions into a PASS / REVIEW / FAIL verdict.

A rule is a callable ``rule(ctx: RuleContext) -> list[RuleHit]``. Rules are built from plain
config (a recipe's ``[[rules]]`` tables, overridden per station) by factories registered through
the ``register_rules`` hook; the built-in ones below are registered by the core that way.

Semantics (every parameter is checked when the rule is built, i.e. when the recipe is loaded
or the station starts, not on the first defect of the shift):

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

The verdict is the most severe decision among the hits; PASS when nothing fired. The
``review_band`` rule is applied last: a FAIL whose regions all have a confidence in
``[low, high)`` becomes REVIEW (an operator looks before the part is scrapped); at or above
``high``, and below ``low``, the FAIL stands (``low = 0``: every FAIL below ``high`` is reviewed).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np

from inspect_core.errors import InspectError
from inspect_core.types import Decision, Region, RuleHit, Verdict

if TYPE_CHECKING:
    from inspect_core.plugin_api.hookspecs import Rule, RuleFactory, VerdictAdjuster


@dataclass
class RuleContext:
    regions: list[Region]
    labels: np.ndarray  # (H, W) class indices after post-processing
    class_names: list[str]
    pixel_size_mm: float | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape[:2]


class RuleConfigError(InspectError, ValueError):
    """A rule's configuration is invalid (unknown class, missing pixel size...); exit code 2."""


def _decision(value: str) -> Decision:
    try:
        d = Decision(str(value).upper())
    except ValueError:
        d = None
    if d not in (Decision.PASS, Decision.REVIEW, Decision.FAIL):
        raise RuleConfigError(f"decision must be PASS, REVIEW or FAIL, got {value!r}")
    return d


def _check_number(name: str, value: Any, lo: float = 0, hi: float | None = None) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or value < lo or (hi is not None and value > hi):
        rng = f"between {lo} and {hi}" if hi is not None else f"a number >= {lo}"
        raise RuleConfigError(f"{name} must be {rng}, got {value!r}")


def _area(r: Region, unit: str) -> float:
    if unit == "px":
        return r.area_px
    if r.area_mm2 is None:
        raise RuleConfigError("an area in mm2 needs the pixel size (pixel_size_mm) of the station")
    # px * (mm/px)**2 carries float noise (0.7**2 = 0.48999...): a region of exactly the
    # threshold must compare equal to it
    return round(r.area_mm2, 9)


def _fmt_area(v: float, unit: str) -> str:
    return f"{v:.0f} px" if unit == "px" else f"{v:.3f} mm²"


def _pick(regions: list[Region], classes: Sequence[str] | None) -> list[tuple[int, Region]]:
    return [(i, r) for i, r in enumerate(regions) if classes is None or r.class_name in classes]


def _check_classes_param(classes: Any) -> list[str] | None:
    """None (every region class), or ``classes`` checked as :func:`_class_list` does."""
    return None if classes is None else _class_list(classes)


def _class_list(classes: Any) -> list[str]:
    """``classes`` (a class name, or a non-empty list of them) as a list."""
    if isinstance(classes, str):
        classes = [classes]
    if (
        not isinstance(classes, (list, tuple))
        or not all(isinstance(c, str) for c in classes)
        or not classes
    ):  # [] would silently match nothing
        raise RuleConfigError(
            f"classes must be a list of class names (leave it out for every "
            f"region class), got {classes!r}"
        )
    return list(classes)


def _check_common(rule: Any, **numbers: float) -> None:
    """Validate what the region rules share (classes, unit, decision) and numbers >= 0."""
    rule.classes = _check_classes_param(rule.classes)
    for name, value in numbers.items():
        _check_number(name, value)
    if getattr(rule, "unit", "px") not in ("px", "mm2"):
        raise RuleConfigError(f"unit must be 'px' or 'mm2', got {rule.unit!r}")
    _decision(rule.decision)


def _check_classes(classes: Sequence[str] | None, names: list[str] | None) -> None:
    if classes is None or names is None:
        return
    unknown = [c for c in classes if c not in names]
    if unknown:
        raise RuleConfigError(f"unknown class(es) {unknown}; the model knows {names}")


def fired(rule: Any, hit: list[tuple[int, Region]], message: str) -> list[RuleHit]:
    """The one hit of a region rule (``rule.name``, ``rule.decision``) over the regions
    ``hit`` (index, region), or none when ``hit`` is empty."""
    if not hit:
        return []
    return [RuleHit(rule.name, _decision(rule.decision), message, [i for i, _ in hit])]


class _AreaRule(ABC):
    """What :class:`MinArea` and :class:`MaxArea` share: one hit for the regions of
    ``classes`` whose area (in ``unit``) ``exceeds`` the limit."""

    classes: list[str] | None
    unit: str

    @abstractmethod
    def exceeds(self, area: float) -> bool:
        """Whether a region of this area fires the rule."""

    @abstractmethod
    def describe(self, hit: list[tuple[int, Region]]) -> str:
        """The message of the hit."""

    def __call__(self, ctx: RuleContext) -> list[RuleHit]:
        hit = [
            (i, r) for i, r in _pick(ctx.regions, self.classes) if self.exceeds(_area(r, self.unit))
        ]
        return fired(self, hit, self.describe(hit)) if hit else []


@dataclass
class MinArea(_AreaRule):
    """Fire for every region of ``classes`` whose area is at least ``min`` (px or mm2)."""

    classes: list[str] | None = None
    min: float = 0
    unit: str = "px"
    decision: str = "FAIL"
    name: str = "min_area"

    def __post_init__(self) -> None:
        _check_common(self, min=self.min)

    def exceeds(self, area: float) -> bool:
        return area >= self.min

    def describe(self, hit: list[tuple[int, Region]]) -> str:
        largest = max(_area(r, self.unit) for _, r in hit)
        return (
            f"{len(hit)} region(s) of {_names(hit)} at or above "
            f"{_fmt_area(self.min, self.unit)} (largest {_fmt_area(largest, self.unit)})"
        )


@dataclass
class MaxArea(_AreaRule):
    """Fire when a region of ``classes`` is larger than ``max`` (px or mm2)."""

    classes: list[str] | None = None
    max: float = 0
    unit: str = "px"
    decision: str = "FAIL"
    name: str = "max_area"

    def __post_init__(self) -> None:
        _check_common(self, max=self.max)

    def exceeds(self, area: float) -> bool:
        return area > self.max

    def describe(self, hit: list[tuple[int, Region]]) -> str:
        limit = _fmt_area(self.max, self.unit)
        return f"{len(hit)} region(s) of {_names(hit)} larger than {limit}"


@dataclass
class MaxCount:
    """Fire when there are more than ``max`` regions of ``classes``."""

    classes: list[str] | None = None
    max: int = 0
    decision: str = "FAIL"
    name: str = "max_count"

    def __post_init__(self) -> None:
        _check_common(self, max=self.max)

    def __call__(self, ctx: RuleContext) -> list[RuleHit]:
        hit = _pick(ctx.regions, self.classes)
        if len(hit) <= self.max:
            return []
        return fired(self, hit, f"{len(hit)} region(s) of {_names(hit)}, more than {self.max}")


@dataclass
class ReviewBand:
    """Regions whose confidence (``mean_prob`` or ``max_prob``) lies in [low, high) are
    uncertain: a FAIL resting only on such regions becomes REVIEW. At or above ``high`` the FAIL
    stands; below ``low`` too (``low = 0`` sends every FAIL below ``high`` to review)."""

    low: float = 0.5
    high: float = 0.8
    on: str = "mean_prob"
    name: str = "review_band"
    adjusts_verdict = True

    def __post_init__(self) -> None:
        _check_number("low", self.low, 0, 1)
        _check_number("high", self.high, 0, 1)
        if self.low >= self.high:
            raise RuleConfigError(f"low ({self.low}) must be below high ({self.high})")
        if self.on not in ("mean_prob", "max_prob"):
            raise RuleConfigError(f"on must be 'mean_prob' or 'max_prob', got {self.on!r}")

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
                out.append(
                    RuleHit(
                        h.rule,
                        Decision.REVIEW,
                        h.message + f" (confidence in [{self.low}, {self.high}): review)",
                        h.regions,
                    )
                )
            else:
                out.append(h)
        return out


def _names(hit: list[tuple[int, Region]]) -> str:
    return ", ".join(sorted({r.class_name for _, r in hit}))


from inspect_core.rules.roi import InRoi, RoiCoverage  # noqa: E402  (they use the helpers above)

BUILTIN_RULES: dict[str, RuleFactory] = {
    "min_area": MinArea,
    "max_area": MaxArea,
    "max_count": MaxCount,
    "roi": InRoi,
    "roi_coverage": RoiCoverage,
    "review_band": ReviewBand,
}


def build_rules(
    specs: list[dict[str, Any]],
    factories: Mapping[str, RuleFactory],
    class_names: list[str] | None = None,
) -> list[Rule]:
    """Rules from config tables ``{"type": "min_area", "classes": [...], ...}``; ``class_names``
    (the model's) refuses unknown names. Every problem is a :class:`RuleConfigError` naming the
    rule. (A recipe's class names are also checked against its ``region_classes``:
    :meth:`inspect_core.runtime.recipe.Recipe.class_problems`.)"""
    from inspect_core.params import construct, parse

    rules: list[Rule] = []
    for n, table in enumerate(specs):
        kind, spec = parse(n, table, factories, "rules", "rule type", RuleConfigError)
        spec.setdefault("name", kind)
        where = f"rules[{n}] ({kind}" + (f" {spec['name']!r})" if spec["name"] != kind else ")")
        if isinstance(spec.get("classes"), str):
            spec["classes"] = [spec["classes"]]
        try:
            _check_classes(spec.get("classes"), class_names)
        except RuleConfigError as e:
            raise RuleConfigError(f"{where}: {e}") from None
        rule = construct(factories[kind], spec, where, RuleConfigError)
        rules.append(rule)
    return rules


def adjusts_verdict(rule: Rule) -> TypeGuard[VerdictAdjuster]:
    """Whether ``rule`` adjusts the other rules' hits (``adjusts_verdict = True``)."""
    return bool(getattr(rule, "adjusts_verdict", False))


def judge(
    ctx: RuleContext, rules: Sequence[Rule], coverage: dict[str, float] | None = None
) -> Verdict:
    """Run every rule and combine their hits into a verdict."""
    hits: list[RuleHit] = []
    for rule in rules:
        if not adjusts_verdict(rule):
            hits.extend(rule(ctx))
    for rule in rules:
        if adjusts_verdict(rule):
            hits = rule.adjust(hits, ctx)
    decision = max((h.decision for h in hits), key=lambda d: d.severity, default=Decision.PASS)
    return Verdict(decision, hits, ctx.regions, coverage or {})
