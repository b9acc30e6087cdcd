"""Input health (issue 25): is an image fit to be judged at all?

Image-quality checks, cheap (numpy and OpenCV; no torch) and configurable per station:
:func:`measure` reads an image's :class:`QualityFigures` (focus, clipped shares, mean level,
contrast; :mod:`.quality`), :func:`check` lists the :class:`QualityLimits` it breaks as
:class:`QualityProblem` s (:mod:`.limits`), and :func:`fit_limits` fits the limits from a
recipe's training images (:mod:`.fit`). A recipe's ``[health]`` table is
:class:`HealthSettings` (:mod:`inspect_core.config.health`); :func:`assess` and :func:`gate`
(:mod:`.gate`) are what an inspector does with each frame it judges: the
:class:`~inspect_core.types.InputHealth` it records, and the verdict (REVIEW or FAIL, never
PASS, for an image that breaks a limit).
"""

from inspect_core.config.health import HealthOverride, HealthSettings, with_override
from inspect_core.health.fit import fit_limits, fit_limits_from_dataset, measure_split
from inspect_core.health.gate import Familiarity, FamiliarityCheck, assess, gate
from inspect_core.health.limits import QualityLimits, QualityProblem, check
from inspect_core.health.quality import QualityFigures, measure

__all__ = [
    "Familiarity",
    "FamiliarityCheck",
    "HealthOverride",
    "HealthSettings",
    "QualityFigures",
    "QualityLimits",
    "QualityProblem",
    "assess",
    "check",
    "fit_limits",
    "fit_limits_from_dataset",
    "gate",
    "measure",
    "measure_split",
    "with_override",
]
