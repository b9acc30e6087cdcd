"""The contracts of a rule, at the bottom of the rules: what a rule gets (:class:`RuleContext`),
what it is (:class:`Rule`, :class:`VerdictAdjuster`), how it is built (:data:`RuleFactory`) and
how it refuses its configuration (:class:`RuleConfigError`). Imports nothing of inspect above
the errors and the result types."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from inspect_core.errors import InspectError
from inspect_core.types import Region, RuleHit

if TYPE_CHECKING:  # kept out of the import: the plugin API imports this module, and stays light
    import numpy as np


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


class Rule(Protocol):
    """A built rule: called on every image with its regions; returns one hit per reason it
    fires (an empty list when it does not). A rule with ``adjusts_verdict = True`` instead gets
    ``adjust(hits, ctx) -> hits`` after all other rules (as ``review_band`` does)."""

    def __call__(self, ctx: RuleContext) -> list[RuleHit]: ...


class VerdictAdjuster(Rule, Protocol):
    """A rule with ``adjusts_verdict = True``: instead of being called, it gets the hits of all
    the other rules in ``adjust`` and returns them changed (``review_band`` turns a FAIL that
    rests on uncertain regions into REVIEW)."""

    @property
    def adjusts_verdict(self) -> bool: ...

    def adjust(self, hits: list[RuleHit], ctx: RuleContext) -> list[RuleHit]: ...


# Builds a Rule from one ``[[rules]]`` table, ``factory(**params)``: ``params`` are the table's keys
# except ``type``, plus ``name`` (the table's ``name``, else the type). A pydantic model (derive
# it from ``inspect_core.rules.params.RuleParams``) is checked like the built-in rules: every
# problem at once, with the key and a "did you mean". Any other callable raises
# ``RuleConfigError`` (or TypeError for an unknown key) for a bad value.
RuleFactory = Callable[..., Rule]
