"""A recipe's ``[health]`` table (issue 25): the limits on an image's quality figures
(:class:`QualityLimits`, ``[health.quality]``) and what breaking one does to the verdict
(``on_problem``); a station changes them in ``[overrides.health]`` (:func:`with_override`).
Declared here, with the other configuration tables; :mod:`inspect_core.health` measures the
figures and checks them.

Only limits that point at a fault an operator can fix exist (one per figure and side,
:data:`LIMITS`): a focus higher than the training images' (finer texture, more noise),
highlights higher or fewer clipped pixels are no such fault, and the mean has both sides.

``on_problem``: ``"REVIEW"`` (default) or ``"FAIL"``: an image that breaks a limit gets that
verdict at least (never PASS), with a rule hit named ``quality`` whose message says why;
``"record"``: the figures and problems are recorded, the verdict stays the model's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from inspect_core.config.problems import format_params
from inspect_core.config.settings import Range, Settings, validate
from inspect_core.types import Bound, Figure, Reason

__all__ = [
    "LIMITS",
    "HealthOverride",
    "HealthSettings",
    "LimitSpec",
    "OnProblem",
    "QualityLimits",
    "with_override",
]

FOCUS = Range(0, 1000)  # ~1 sharp; white noise reads ~40
LEVEL = Range(0, 255, "gray levels")
SHARE = Range(0, 1)


@dataclass(frozen=True)
class LimitSpec:
    """One limit: the figure it bounds, which side, its field of :class:`QualityLimits`, and
    the reason an image outside it is given."""

    figure: Figure
    bound: Bound
    reason: Reason

    @property
    def key(self) -> str:
        return f"{self.figure}_{self.bound}"


# every limit, in the order problems are reported: exposure first (it also lowers contrast)
LIMITS: tuple[LimitSpec, ...] = (
    LimitSpec("mean", "min", "under-exposed"),
    LimitSpec("highlights", "min", "under-exposed"),
    LimitSpec("clipped_dark", "max", "under-exposed"),
    LimitSpec("mean", "max", "over-exposed"),
    LimitSpec("clipped_bright", "max", "over-exposed"),
    LimitSpec("focus", "min", "out of focus"),
    LimitSpec("contrast", "min", "low contrast"),
)


class QualityLimits(Settings):
    """Limits on the quality figures of the frame the model sees (``inspect_core.health``);
    each unset one is not checked. ``inspect health fit`` fits them from the training images."""

    focus_min: Annotated[float, FOCUS] | None = Field(
        default=None, description="least focus (fine / coarse gradient energy; ~1 sharp)"
    )
    clipped_dark_max: Annotated[float, SHARE] | None = Field(
        default=None, description="largest share of pixels at 0..2"
    )
    clipped_bright_max: Annotated[float, SHARE] | None = Field(
        default=None, description="largest share of pixels at 253..255"
    )
    mean_min: Annotated[float, LEVEL] | None = Field(default=None, description="least mean level")
    mean_max: Annotated[float, LEVEL] | None = Field(default=None, description="largest mean level")
    highlights_min: Annotated[float, LEVEL] | None = Field(
        default=None, description="least gray level of the brightest 1 % of the pixels"
    )
    contrast_min: Annotated[float, LEVEL] | None = Field(
        default=None, description="least standard deviation of the gray levels"
    )

    @model_validator(mode="after")
    def _min_below_max(self) -> QualityLimits:
        if self.mean_min is not None and self.mean_max is not None:
            if self.mean_min > self.mean_max:
                raise ValueError(
                    f"mean_min ({self.mean_min:g}) is above mean_max ({self.mean_max:g}); "
                    "no image could pass: swap them"
                )
        return self

    def limit(self, spec: LimitSpec) -> float | None:
        """The value of the limit ``spec`` (None: not set)."""
        value = getattr(self, spec.key)
        return None if value is None else float(value)


OnProblem = Literal["REVIEW", "FAIL", "record"]
ON_PROBLEM = 'what a broken limit does: "REVIEW" or "FAIL" the image, or "record" only'


class HealthSettings(Settings):
    """``[health]``: is an image fit to be judged? Quality limits on the frame the model sees
    (``inspect health fit`` fits them from the training images) and what breaking one does."""

    quality: QualityLimits | None = Field(
        default=None, description="[health.quality] limits; not set: no quality check"
    )
    on_problem: OnProblem = Field(default="REVIEW", description=ON_PROBLEM)


class HealthOverride(Settings):
    """``[overrides.health]``: a station's changes to its recipe's ``[health]``; a key not
    given keeps the recipe's."""

    quality: QualityLimits | None = Field(
        default=None, description="[overrides.health.quality]: replaces the recipe's limits"
    )
    on_problem: OnProblem | None = Field(default=None, description=ON_PROBLEM)


def with_override(
    base: HealthSettings | None, patch: Mapping[str, Any], where: str
) -> HealthSettings:
    """``base`` (a recipe's ``[health]``; None: none) with the keys of ``patch`` (a station's
    ``[overrides.health]`` table, or the ``health`` a record kept in its thresholds) in place
    of its own; ValueError naming ``where`` and every problem of ``patch``."""
    merged = (base or HealthSettings()).model_dump()
    merged.update(patch)
    settings, problems = validate(HealthSettings, merged)
    if settings is None:
        raise ValueError(f"{where}: health: " + "; ".join(format_params(problems)))
    return settings
