"""A good-only model's region (class ``anomaly``) goes to an operator by default: a region
rule that names no decision gives REVIEW when every region it fired on is class anomaly, and
FAIL otherwise, so one recipe serves the good-only model and the segmentation model trained
from operators' names after it; a recipe that says FAIL gets FAIL."""

from __future__ import annotations

import numpy as np
import pytest

from inspect_core.rules.engine import BUILTIN_RULES, RuleContext, build_rules, judge
from inspect_core.runtime.postprocess import extract_regions
from inspect_core.types import Decision

GOOD_ONLY = ["background", "anomaly"]
NAMED = ["background", "crack", "blowhole"]


def verdict_of(rules: list[dict], classes: list[str], labels_of: list[int]) -> Decision:
    labels = np.zeros((40, 60), np.int64)
    for k, c in enumerate(labels_of):
        labels[5:15, 5 + 20 * k : 15 + 20 * k] = c
    probs = np.stack([(labels == c).astype(np.float32) for c in range(len(classes))])
    ctx = RuleContext(extract_regions(labels, probs, classes), labels, classes, None)
    return judge(ctx, build_rules(rules, BUILTIN_RULES, classes)).decision


RULES = [
    [{"type": "min_area", "min": 20}],
    [{"type": "max_area", "max": 10}],
    [{"type": "max_count", "max": 0}],
    [{"type": "roi", "polygon": [[0, 0], [60, 0], [60, 40], [0, 40]], "units": "px"}],
]


@pytest.mark.parametrize("rules", RULES)
def test_an_anomaly_region_is_reviewed_and_a_named_defect_fails(rules):
    assert verdict_of(rules, GOOD_ONLY, [1]) == Decision.REVIEW
    assert verdict_of(rules, NAMED, [1]) == Decision.FAIL
    assert verdict_of(rules, NAMED, []) == Decision.PASS


def test_the_recipe_decides_when_it_says_so():
    said = [{"type": "min_area", "min": 20, "decision": "FAIL"}]
    assert verdict_of(said, GOOD_ONLY, [1]) == Decision.FAIL
    said = [{"type": "min_area", "min": 20, "decision": "REVIEW"}]
    assert verdict_of(said, NAMED, [1, 2]) == Decision.REVIEW
