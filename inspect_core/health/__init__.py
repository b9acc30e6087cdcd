"""Input health (issue 25): is an image fit to be judged at all?

Image-quality checks, cheap (numpy and OpenCV; no torch) and configurable per station:
:func:`measure` reads an image's :class:`QualityFigures` (focus, clipped shares, mean level,
contrast; :mod:`.quality`), :func:`check` lists the :class:`QualityLimits` it breaks as
:class:`QualityProblem` s (:mod:`.limits`), and :func:`fit_limits` fits the limits from a
recipe's training images (:mod:`.fit`).
"""

from inspect_core.health.fit import fit_limits, fit_limits_from_dataset, measure_split
from inspect_core.health.limits import QualityLimits, QualityProblem, check
from inspect_core.health.quality import QualityFigures, measure

__all__ = [
    "QualityFigures",
    "QualityLimits",
    "QualityProblem",
    "check",
    "fit_limits",
    "fit_limits_from_dataset",
    "measure",
    "measure_split",
]
