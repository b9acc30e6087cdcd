"""What an inspection does with its image's health (issue 25 item 3).

:func:`assess` measures the quality figures of the frame the model saw, checks them against the
recipe's ``[health.quality]`` limits and, where the inspector has one, asks its
:class:`FamiliarityCheck` how like the training images the frame is; :func:`gate` turns what it
found into the verdict: an image that breaks a limit, or an unfamiliar one, is REVIEW (or FAIL,
``on_problem``) with a rule hit that says why, never a confident PASS; ``"record"`` keeps the
model's verdict.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import numpy as np

from inspect_core.config.health import HealthSettings
from inspect_core.errors import ImageError
from inspect_core.health.familiarity import Familiarity
from inspect_core.health.limits import check
from inspect_core.health.quality import measure
from inspect_core.types import Decision, InputHealth, RuleHit, Verdict

__all__ = ["FAMILIARITY_RULE", "QUALITY_RULE", "Familiarity", "FamiliarityCheck", "assess", "gate"]

QUALITY_RULE = "quality"  # the rule hit of a broken quality limit
FAMILIARITY_RULE = "familiarity"  # the rule hit of an unfamiliar image


class FamiliarityCheck(Protocol):
    """What an inspector asks about each frame it judges, when its model file ships a
    familiarity model (:class:`inspect_core.health.familiarity.FamiliarityModel`): set as
    ``InspectorBase.familiarity``."""

    def familiarity_of(self, features: np.ndarray) -> Familiarity:
        """The familiarity of one frame from the features its model run gave (the
        ``features`` output, averaged over the frame's tiles and test-time copies)."""
        ...


def assess(
    frame: np.ndarray,
    settings: HealthSettings | None,
    familiarity: FamiliarityCheck | None = None,
    features: np.ndarray | None = None,
) -> InputHealth:
    """The health of ``frame``: its quality figures (always, ~1 ms per MP; None for a frame
    they cannot be read from, e.g. under 16 px a side), the limits of ``settings`` it breaks,
    and its familiarity when ``familiarity`` is given with the ``features`` of its model run."""
    try:
        figures = measure(frame)
    except ImageError:
        figures = None
    limits = settings.quality if settings is not None else None
    problems = tuple(check(figures, limits)) if figures is not None and limits else ()
    fam = None
    if familiarity is not None and features is not None:
        fam = familiarity.familiarity_of(features)
    return InputHealth(
        quality=figures,
        problems=problems,
        familiarity=None if fam is None else fam.value,
        unfamiliar=None if fam is None else fam.unfamiliar,
    )


def gate(verdict: Verdict, health: InputHealth, settings: HealthSettings | None) -> Verdict:
    """``verdict`` with what ``health`` says: a hit named ``quality`` per broken limit (the
    reason first, e.g. "out of focus: focus 0.081 is below the least 0.15 allowed") and one
    named ``familiarity`` for an unfamiliar image, each asking for ``on_problem``; the verdict
    is then at least that. Unchanged when nothing is wrong or ``on_problem`` is "record"."""
    on_problem = settings.on_problem if settings is not None else "REVIEW"
    if on_problem == "record":
        return verdict
    decision = Decision(on_problem)
    hits = [RuleHit(QUALITY_RULE, decision, p.message) for p in health.problems]
    if health.unfamiliar:
        hits.append(RuleHit(FAMILIARITY_RULE, decision, health.messages[-1]))
    if not hits:
        return verdict
    worst = max(verdict.decision, decision, key=lambda d: d.severity)
    return replace(verdict, decision=worst, hits=[*hits, *verdict.hits])
