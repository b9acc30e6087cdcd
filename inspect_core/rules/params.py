"""The parameters of every built-in rule, declared once as pydantic models: the rules derive
from them (:mod:`.builtin`, :mod:`.roi`), recipes check their ``[[rules]]`` tables against them as
they load, and the configuration reference is made from them. A plugin's rule derives its own
parameters from :class:`RuleParams` and is checked the same way."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BeforeValidator, Field, model_validator

from inspect_core.config.settings import Range, Settings
from inspect_core.rules.base import RuleConfigError

AREA = Range(0, 1e8, 'px (or mm² with unit = "mm2")')
COORD = Range(-1e6, 1e6, "px (or fractions 0..1)")
RATIO = Range(0, 1)
MAX_POINTS = 1000


def _class_list(classes: Any) -> Any:
    """``classes`` (a class name, or a non-empty list of them) as a list."""
    if classes is None:
        return None
    if isinstance(classes, str):
        classes = [classes]
    if (
        not isinstance(classes, (list, tuple))
        or not all(isinstance(c, str) for c in classes)
        or not classes
    ):  # [] would silently match nothing
        raise ValueError(
            f"classes must be a list of class names (leave it out for every "
            f"region class), got {classes!r}"
        )
    return list(classes)


def _upper(v: Any) -> Any:
    return v.upper() if isinstance(v, str) else v


ClassList = Annotated[list[str], BeforeValidator(_class_list)]
DecisionName = Annotated[Literal["PASS", "REVIEW", "FAIL"], BeforeValidator(_upper)]
Polygon = Annotated[list[list[Annotated[float, COORD]]], Field(max_length=MAX_POINTS, min_length=0)]
Unit = Literal["px", "mm2"]
Units = Literal["auto", "px", "fraction"]
CLASSES = "model class names; default: every region class"
DECISION = "the verdict when it fires (PASS, REVIEW or FAIL)"
ANOMALY_CLASS = "anomaly"  # the one region class of a good-only model
REGION_DECISION = (
    "the verdict when it fires (PASS, REVIEW or FAIL); unset: REVIEW when every region it "
    "fired on is class anomaly (a good-only model knows a region is unlike the good parts, not "
    "that it is a defect), else FAIL"
)
UNITS = 'polygon in "px", "fraction" (of width and height) or "auto" (0..1: fractions)'


class RuleParams(Settings):
    """What every rule takes: its ``name`` (the table's ``name``, else its type)."""

    name: str = Field(default="", description="the rule's name in verdicts; default: its type")


def roi_points(polygon: Any, units: str = "auto") -> tuple[np.ndarray, bool]:
    """Check a region-of-interest polygon; returns its points and whether they are fractions
    of the image size (see :mod:`inspect_core.rules.builtin` for ``units``)."""
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


class MinAreaParams(RuleParams):
    """``min_area``: fires for every region of ``classes`` whose area is at least ``min``."""

    classes: ClassList | None = Field(default=None, description=CLASSES)
    min: Annotated[float, AREA] = Field(default=0, description="smallest area that fires (>=)")
    unit: Unit = Field(default="px", description='"px", or "mm2" (needs pixel_size_mm)')
    decision: DecisionName | None = Field(default=None, description=REGION_DECISION)


class MaxAreaParams(RuleParams):
    """``max_area``: fires when a region of ``classes`` is larger than ``max``."""

    classes: ClassList | None = Field(default=None, description=CLASSES)
    max: Annotated[float, AREA] = Field(default=0, description="largest area that passes (fires >)")
    unit: Unit = Field(default="px", description='"px", or "mm2" (needs pixel_size_mm)')
    decision: DecisionName | None = Field(default=None, description=REGION_DECISION)


class MaxCountParams(RuleParams):
    """``max_count``: fires when there are more than ``max`` regions of ``classes``."""

    classes: ClassList | None = Field(default=None, description=CLASSES)
    max: Annotated[int, Range(0, 1e6, "regions", whole=True)] = Field(
        default=0, description="most regions that pass"
    )
    decision: DecisionName | None = Field(default=None, description=REGION_DECISION)


class InRoiParams(RuleParams):
    """``roi``: fires for regions of ``classes`` inside or touching a polygon."""

    polygon: Polygon = Field(default_factory=list, description="[[x, y], ...], 3 points or more")
    classes: ClassList | None = Field(default=None, description=CLASSES)
    mode: Literal["touching", "inside"] = Field(default="touching", description="any pixel, or all")
    min_area: Annotated[float, AREA] = Field(default=0, description="smaller regions are ignored")
    unit: Unit = Field(default="px", description='"px", or "mm2" (needs pixel_size_mm)')
    decision: DecisionName | None = Field(default=None, description=REGION_DECISION)
    units: Units = Field(default="auto", description=UNITS)

    @model_validator(mode="after")
    def _polygon(self) -> InRoiParams:
        roi_points(self.polygon, self.units)
        return self


class RoiCoverageParams(RuleParams):
    """``roi_coverage``: fires when ``classes`` cover more than ``max_ratio`` of the polygon
    (the whole image without one)."""

    classes: ClassList = Field(json_schema_extra={"hint": 'e.g. classes = ["rust"]'})
    max_ratio: Annotated[float, RATIO] = Field(default=1.0, description="largest share that passes")
    polygon: Polygon | None = Field(
        default=None, description="[[x, y], ...]; none: the whole image"
    )
    decision: DecisionName = Field(default="FAIL", description=DECISION)
    units: Units = Field(default="auto", description=UNITS)

    @model_validator(mode="after")
    def _polygon(self) -> RoiCoverageParams:
        if self.polygon:  # none or [] = the whole image
            roi_points(self.polygon, self.units)
        return self


class ReviewBandParams(RuleParams):
    """``review_band``: a FAIL resting only on regions of confidence in [low, high) becomes
    REVIEW."""

    low: Annotated[float, RATIO] = Field(default=0.5, description="lowest confidence reviewed")
    high: Annotated[float, RATIO] = Field(
        default=0.8, description="confidence from which a FAIL stands"
    )
    on: Literal["mean_prob", "max_prob"] = Field(
        default="mean_prob", description="which confidence"
    )

    @model_validator(mode="after")
    def _band(self) -> ReviewBandParams:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self
