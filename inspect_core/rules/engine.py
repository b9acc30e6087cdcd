"""Rules: turn regions into a PASS / REVIEW / FAIL verdict.

A rule is a callable ``rule(ctx: RuleContext) -> list[RuleHit]`` (:mod:`.base`). Rules are built
from plain config (a recipe's ``[[rules]]`` tables, overridden per station) by factories
registered through the ``register_rules`` hook; the built-in ones (:mod:`.builtin`, :mod:`.roi`)
are registered by the core that way. Every parameter is checked when the rule is built (the
recipe is loaded or the station starts), not on the first defect of the shift; a factory that is
a pydantic model (a :class:`~inspect_core.rules.params.RuleParams`) reports every problem of its
table at once, with the key and a "did you mean".

The verdict is the most severe decision among the hits; PASS when nothing fired. A rule that
adjusts the verdict (``review_band``) is applied last, to the hits of all the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from pydantic import BaseModel, ValidationError

from inspect_core.config.problems import format_params, problems_of
from inspect_core.params import construct, parse
from inspect_core.rules.base import (
    Rule,
    RuleConfigError,
    RuleContext,
    RuleFactory,
    VerdictAdjuster,
)
from inspect_core.rules.builtin import MaxArea, MaxCount, MinArea, ReviewBand
from inspect_core.rules.roi import InRoi, RoiCoverage
from inspect_core.types import Decision, RuleHit, Verdict

__all__ = [
    "BUILTIN_RULES",
    "RuleConfigError",
    "RuleContext",
    "adjusts_verdict",
    "build_rules",
    "judge",
]

BUILTIN_RULES: dict[str, RuleFactory] = {
    "min_area": MinArea,
    "max_area": MaxArea,
    "max_count": MaxCount,
    "roi": InRoi,
    "roi_coverage": RoiCoverage,
    "review_band": ReviewBand,
}


def _check_classes(classes: Sequence[str] | None, names: list[str] | None) -> None:
    if classes is None or names is None:
        return
    unknown = [c for c in classes if c not in names]
    if unknown:
        raise RuleConfigError(f"unknown class(es) {unknown}; the model knows {names}")


def build_rules(
    specs: list[dict[str, Any]],
    factories: Mapping[str, RuleFactory],
    class_names: list[str] | None = None,
) -> list[Rule]:
    """Rules from config tables ``{"type": "min_area", "classes": [...], ...}``; ``class_names``
    (the model's) refuses unknown names. Every problem is a :class:`RuleConfigError` naming the
    rule. (A recipe's class names are also checked against its ``region_classes``:
    :meth:`inspect_core.runtime.recipe.Recipe.class_problems`.)"""
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
        rules.append(build_rule(factories[kind], spec, where))
    return rules


def build_rule(factory: RuleFactory, params: dict[str, Any], where: str) -> Rule:
    """One rule: a pydantic model factory validated (every problem at once), any other
    factory called with the parameters."""
    if isinstance(factory, type) and issubclass(factory, BaseModel):
        try:
            rule: Rule = factory.model_validate(params)  # type: ignore[assignment]
        except ValidationError as e:
            raise RuleConfigError(
                f"{where}: " + "; ".join(format_params(problems_of(e, factory)))
            ) from None
        return rule

    built: Rule = construct(factory, params, where, RuleConfigError)
    return built


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
