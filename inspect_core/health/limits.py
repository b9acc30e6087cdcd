"""Which quality limits an image breaks.

The limits are a configuration table, :class:`~inspect_core.config.health.QualityLimits`
(``[health.quality]``): every limit optional, unset = not checked. :func:`check` names each
broken limit as a :class:`~inspect_core.types.QualityProblem` with the reason an operator acts
on, in the order of :data:`~inspect_core.config.health.LIMITS`.
"""

from __future__ import annotations

from inspect_core.config.health import LIMITS, LimitSpec, QualityLimits
from inspect_core.types import Bound, QualityFigures, QualityProblem, Reason

__all__ = ["LIMITS", "Bound", "LimitSpec", "QualityLimits", "QualityProblem", "Reason", "check"]


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
