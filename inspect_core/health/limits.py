"""Limits on the quality figures, and which an image breaks.

:class:`QualityLimits` is a configuration table (a :class:`~inspect_core.config.Settings`):
every limit optional, unset = not checked. :func:`check` names each broken limit as a
:class:`QualityProblem` with the reason an operator acts on. Only limits that point at a fault
an operator can fix exist (one per figure and side, :data:`LIMITS`): a focus higher than the
training images' (finer texture, more noise), highlights higher or fewer clipped pixels are no
such fault, and the mean has both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, model_validator

from inspect_core.config.settings import Range, Settings
from inspect_core.health.quality import Figure, QualityFigures

__all__ = ["LIMITS", "Bound", "LimitSpec", "QualityLimits", "QualityProblem", "Reason", "check"]

Bound = Literal["min", "max"]
Reason = Literal["out of focus", "under-exposed", "over-exposed", "low contrast"]

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
    """Limits on an image's quality figures (``inspect_core.health``); each unset one is not
    checked. Fitted from a recipe's training images by default."""

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


@dataclass(frozen=True)
class QualityProblem:
    """One limit an image breaks."""

    figure: Figure
    value: float
    bound: Bound
    limit: float
    reason: Reason

    @property
    def message(self) -> str:
        """One line for the person at the line, e.g. "out of focus: focus 0.081 is below the
        least 0.15 allowed"."""
        side = "below the least" if self.bound == "min" else "above the largest"
        return (
            f"{self.reason}: {self.figure.replace('_', ' ')} {self.value:.3g} is {side} "
            f"{self.limit:.3g} allowed"
        )


def check(figures: QualityFigures, limits: QualityLimits) -> list[QualityProblem]:
    """Every limit of ``limits`` that ``figures`` break (an image on a limit passes), exposure
    first; [] for an image within all of them."""
    problems = []
    for spec in LIMITS:
        limit = limits.limit(spec)
        if limit is None:
            continue
        value = figures.value(spec.figure)
        if (value < limit) if spec.bound == "min" else (value > limit):
            problems.append(QualityProblem(spec.figure, value, spec.bound, limit, spec.reason))
    return problems
