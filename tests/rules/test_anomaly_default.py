"""A good-only model's region (class ``anomaly``) goes to an operator by default: a region
rule that judges only that class and names no decision gives REVIEW; a recipe can still say
FAIL, and rules on other classes keep FAIL."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inspect_core.rules.engine import BUILTIN_RULES, RuleContext, build_rules, judge
from inspect_core.runtime.postprocess import extract_regions
from inspect_core.runtime.recipe import Recipe
from inspect_core.types import Decision

CLASSES = ["background", "anomaly"]


def recipe(rules: list[dict], region_classes: list[str] | None = None) -> Recipe:
    return Recipe("part", Path("part.onnx"), rules=rules, region_classes=region_classes)


def verdict_of(rules: list[dict]) -> Decision:
    labels = np.zeros((40, 40), np.int64)
    labels[10:20, 10:20] = 1
    probs = np.stack([(labels == 0).astype(np.float32), (labels == 1).astype(np.float32)])
    ctx = RuleContext(extract_regions(labels, probs, CLASSES), labels, CLASSES, None)
    return judge(ctx, build_rules(rules, BUILTIN_RULES, CLASSES)).decision


def test_an_anomaly_region_is_reviewed_unless_the_recipe_says_otherwise():
    plain = recipe([{"type": "min_area", "classes": ["anomaly"], "min": 20}])
    assert plain.rules[0]["decision"] == "REVIEW"
    assert verdict_of(plain.rules) == Decision.REVIEW
    said_fail = recipe([{"type": "min_area", "classes": ["anomaly"], "decision": "FAIL"}])
    assert verdict_of(said_fail.rules) == Decision.FAIL
    # judged through the recipe's region classes: the same default
    implied = recipe([{"type": "max_count", "max": 0}], region_classes=["anomaly"])
    assert implied.rules[0]["decision"] == "REVIEW"


def test_rules_on_other_classes_keep_fail_and_overrides_get_the_default_too():
    other = recipe([{"type": "min_area", "classes": ["crack"]}])
    assert "decision" not in other.rules[0]
    mixed = recipe([{"type": "min_area", "classes": ["anomaly", "crack"]}])
    assert "decision" not in mixed.rules[0]
    spec = {"type": "min_area", "classes": ["anomaly"]}
    base = recipe([])
    changed = base.with_overrides({"rules": [spec]})
    assert changed.rules[0]["decision"] == "REVIEW"
    assert spec == {"type": "min_area", "classes": ["anomaly"]}  # the caller's dict untouched
