"""Rules on synthetic label maps: each rule type, overrides, the review band, the verdict."""
import numpy as np
import pytest

from inspect_core.postprocess import extract_regions
from inspect_core.recipes import Recipe
from inspect_core.rules import BUILTIN_RULES, RuleConfigError, RuleContext, build_rules, judge
from inspect_core.types import Decision

CLASSES = ["background", "scratch", "dent"]


def ctx_for(labels, conf=0.9, pixel_size=None):
    probs = np.zeros((3, *labels.shape), np.float32)
    for c in range(3):
        probs[c][labels == c] = conf
    probs[0][labels == 0] = 1.0
    regions = extract_regions(labels, probs, CLASSES, pixel_size_mm=pixel_size)
    return RuleContext(regions, labels, CLASSES, pixel_size)


def verdict(specs, labels, **kw):
    return judge(ctx_for(labels, **kw), build_rules(specs, BUILTIN_RULES, CLASSES))


def blobs():
    labels = np.zeros((100, 100), np.uint8)
    labels[10:20, 10:20] = 1  # scratch, 100 px, top-left
    labels[60:90, 60:90] = 2  # dent, 900 px, bottom-right
    labels[5:7, 80:82] = 1  # scratch, 4 px
    return labels


def test_nothing_fires_is_pass():
    v = verdict([{"type": "min_area", "min": 1}], np.zeros((50, 50), np.uint8))
    assert v.decision == Decision.PASS and v.hits == []


def test_min_area_fires_only_for_large_regions_of_its_classes():
    v = verdict([{"type": "min_area", "classes": ["scratch"], "min": 50}], blobs())
    assert v.decision == Decision.FAIL
    (hit,) = v.hits
    fired = [v.regions[i] for i in hit.regions]
    assert [(r.class_name, r.area_px) for r in fired] == [("scratch", 100)]


def test_min_area_in_mm2_needs_pixel_size():
    specs = [{"type": "min_area", "classes": ["dent"], "min": 8.0, "unit": "mm2"}]
    assert verdict(specs, blobs(), pixel_size=0.1).decision == Decision.FAIL  # 900 px = 9 mm²
    assert verdict(specs, blobs(), pixel_size=0.09).decision == Decision.PASS  # 7.29 mm²
    with pytest.raises(RuleConfigError, match="pixel size"):
        verdict(specs, blobs())


def test_max_area_and_max_count():
    assert verdict([{"type": "max_area", "classes": ["dent"], "max": 899}], blobs()).decision == Decision.FAIL
    assert verdict([{"type": "max_area", "classes": ["dent"], "max": 900}], blobs()).decision == Decision.PASS
    v = verdict([{"type": "max_count", "classes": ["scratch"], "max": 1, "decision": "REVIEW"}], blobs())
    assert v.decision == Decision.REVIEW and len(v.hits[0].regions) == 2
    assert verdict([{"type": "max_count", "classes": ["scratch"], "max": 2}], blobs()).decision == Decision.PASS


def test_roi_touching_vs_inside():
    # ROI covers the right half: the dent (60..89) is inside; the small scratch (80..81) too
    right = [[50, 0], [99, 0], [99, 99], [50, 99]]
    v = verdict([{"type": "roi", "polygon": right, "classes": ["dent"], "mode": "inside"}], blobs())
    assert v.decision == Decision.FAIL
    left = [[0, 0], [70, 0], [70, 99], [0, 99]]  # cuts through the dent
    assert verdict([{"type": "roi", "polygon": left, "classes": ["dent"], "mode": "inside"}],
                   blobs()).decision == Decision.PASS
    assert verdict([{"type": "roi", "polygon": left, "classes": ["dent"], "mode": "touching"}],
                   blobs()).decision == Decision.FAIL
    # fractions of the image work the same; min_area filters small regions
    frac = [[0.5, 0.0], [1.0, 0.0], [1.0, 0.1], [0.5, 0.1]]
    assert verdict([{"type": "roi", "polygon": frac, "classes": ["scratch"], "min_area": 10}],
                   blobs()).decision == Decision.PASS
    assert verdict([{"type": "roi", "polygon": frac, "classes": ["scratch"]}],
                   blobs()).decision == Decision.FAIL


def test_roi_coverage_ratio():
    bottom_right = [[50, 50], [99, 50], [99, 99], [50, 99]]  # 2500 px, dent covers 900 = 36%
    spec = {"type": "roi_coverage", "polygon": bottom_right, "classes": ["dent"]}
    assert verdict([{**spec, "max_ratio": 0.30}], blobs()).decision == Decision.FAIL
    assert verdict([{**spec, "max_ratio": 0.40}], blobs()).decision == Decision.PASS


def test_review_band_downgrades_uncertain_fail_only():
    specs = [{"type": "min_area", "min": 50}, {"type": "review_band", "low": 0.5, "high": 0.8}]
    assert verdict(specs, blobs(), conf=0.6).decision == Decision.REVIEW
    assert verdict(specs, blobs(), conf=0.95).decision == Decision.FAIL


def test_most_severe_decision_wins_and_hits_are_listed():
    specs = [{"type": "max_count", "classes": ["scratch"], "max": 1, "decision": "REVIEW"},
             {"type": "min_area", "classes": ["dent"], "min": 100}]
    v = verdict(specs, blobs())
    assert v.decision == Decision.FAIL
    assert {h.rule for h in v.hits} == {"max_count", "min_area"}


def test_bad_rule_configs_are_clear():
    with pytest.raises(RuleConfigError, match="unknown rule type 'nope'"):
        build_rules([{"type": "nope"}], BUILTIN_RULES, CLASSES)
    with pytest.raises(RuleConfigError, match="unknown class"):
        build_rules([{"type": "min_area", "classes": ["crack"]}], BUILTIN_RULES, CLASSES)
    with pytest.raises(RuleConfigError, match="min_area"):
        build_rules([{"type": "min_area", "minimum": 3}], BUILTIN_RULES, CLASSES)
    with pytest.raises(RuleConfigError, match="decision"):
        verdict([{"type": "min_area", "min": 1, "decision": "MAYBE"}], blobs())


def test_station_overrides_patch_rules_without_retraining(tmp_path):
    r = Recipe("x", tmp_path / "m.onnx", rules=[{"type": "min_area", "min": 50}])
    o = r.with_overrides({"rule_params": {"min_area": {"min": 500}}, "pixel_size_mm": 0.2})
    assert o.rules[0]["min"] == 500 and o.pixel_size_mm == 0.2
    assert r.rules[0]["min"] == 50  # the recipe itself is untouched
    assert verdict(o.rules, blobs()).decision == Decision.FAIL  # dent 900 px >= 500
    assert verdict([{"type": "min_area", "min": 1000}], blobs()).decision == Decision.PASS
    with pytest.raises(Exception, match="no rule 'roi'"):
        r.with_overrides({"rule_params": {"roi": {}}})
    with pytest.raises(Exception, match="unknown recipe override"):
        r.with_overrides({"threshold": 3})
