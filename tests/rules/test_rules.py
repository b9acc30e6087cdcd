"""Rules on synthetic label maps: each rule type, overrides, the review band, the verdict."""

from pathlib import Path

import numpy as np
import pytest

from inspect_core.rules.engine import (
    BUILTIN_RULES,
    RuleConfigError,
    RuleContext,
    build_rules,
    judge,
)
from inspect_core.runtime.postprocess import extract_regions
from inspect_core.runtime.recipe import Recipe, RecipeError
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
    assert (
        verdict([{"type": "max_area", "classes": ["dent"], "max": 899}], blobs()).decision
        == Decision.FAIL
    )
    assert (
        verdict([{"type": "max_area", "classes": ["dent"], "max": 900}], blobs()).decision
        == Decision.PASS
    )
    v = verdict(
        [{"type": "max_count", "classes": ["scratch"], "max": 1, "decision": "REVIEW"}], blobs()
    )
    assert v.decision == Decision.REVIEW and len(v.hits[0].regions) == 2
    assert (
        verdict([{"type": "max_count", "classes": ["scratch"], "max": 2}], blobs()).decision
        == Decision.PASS
    )


def test_roi_touching_vs_inside():
    # ROI covers the right half: the dent (60..89) is inside; the small scratch (80..81) too
    right = [[50, 0], [99, 0], [99, 99], [50, 99]]
    v = verdict([{"type": "roi", "polygon": right, "classes": ["dent"], "mode": "inside"}], blobs())
    assert v.decision == Decision.FAIL
    left = [[0, 0], [70, 0], [70, 99], [0, 99]]  # cuts through the dent
    assert (
        verdict(
            [{"type": "roi", "polygon": left, "classes": ["dent"], "mode": "inside"}], blobs()
        ).decision
        == Decision.PASS
    )
    assert (
        verdict(
            [{"type": "roi", "polygon": left, "classes": ["dent"], "mode": "touching"}], blobs()
        ).decision
        == Decision.FAIL
    )
    # fractions of the image work the same; min_area filters small regions
    frac = [[0.5, 0.0], [1.0, 0.0], [1.0, 0.1], [0.5, 0.1]]
    assert (
        verdict(
            [{"type": "roi", "polygon": frac, "classes": ["scratch"], "min_area": 10}], blobs()
        ).decision
        == Decision.PASS
    )
    assert (
        verdict([{"type": "roi", "polygon": frac, "classes": ["scratch"]}], blobs()).decision
        == Decision.FAIL
    )


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
    specs = [
        {"type": "max_count", "classes": ["scratch"], "max": 1, "decision": "REVIEW"},
        {"type": "min_area", "classes": ["dent"], "min": 100},
    ]
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


# ---------------------------------------------------------------- semantics fixed in review


def test_config_errors_surface_when_built_not_on_the_first_defect():
    """A typo in a rule that has not fired yet is an error at load time, naming the rule."""
    bad = [
        ({"type": "min_area", "min": 1, "decision": "MAYBE"}, "decision"),
        ({"type": "min_area", "min": 1, "unit": "mm"}, "unit"),
        ({"type": "min_area", "min": -5}, "min must be"),
        ({"type": "max_count", "max": "3"}, "max must be"),
        ({"type": "roi", "polygon": [[0, 0], [5, 5]]}, "at least 3"),
        ({"type": "roi", "polygon": [[0, 0], [50, 0], [50, 50]], "mode": "inner"}, "mode"),
        ({"type": "roi_coverage", "max_ratio": 0.2}, "classes"),
        ({"type": "max_count", "classes": []}, "classes"),
        ({"type": "roi_coverage", "classes": ["dent"], "max_ratio": 30}, "max_ratio"),
        ({"type": "review_band", "low": 0.8, "high": 0.5}, "below high"),
        ({"type": "review_band", "on": "confidence"}, "mean_prob"),
        ({"type": "min_area", "min": 1, "decision": "ERROR"}, "decision"),
    ]
    for spec, words in bad:
        with pytest.raises(RuleConfigError, match=words) as e:
            build_rules([spec], BUILTIN_RULES, CLASSES)
        assert f"rules[0] ({spec['type']})" in str(e.value)
    # a rule error is an InspectError: the command line prints it and exits 2, no traceback
    from inspect_core.errors import InspectError

    assert issubclass(RuleConfigError, InspectError) and issubclass(RuleConfigError, ValueError)


def test_a_single_class_name_is_a_list_of_one_not_a_substring_match():
    # "dents" used to match class "dent" by substring; now it is an unknown class
    with pytest.raises(RuleConfigError, match="unknown class"):
        build_rules([{"type": "min_area", "classes": "dents"}], BUILTIN_RULES, CLASSES)
    v = verdict([{"type": "min_area", "classes": "dent", "min": 1}], blobs())
    assert {v.regions[i].class_name for i in v.hits[0].regions} == {"dent"}


def test_thresholds_compare_at_or_above_for_minimums_above_for_maximums():
    assert (
        verdict([{"type": "min_area", "classes": ["dent"], "min": 900}], blobs()).decision
        == Decision.FAIL
    )
    assert (
        verdict([{"type": "min_area", "classes": ["dent"], "min": 901}], blobs()).decision
        == Decision.PASS
    )
    # mm²: 100 px at 0.7 mm/px is 49 mm² exactly, although 100 * 0.7**2 = 48.99999999999999
    lab = np.zeros((40, 40), np.uint8)
    lab[5:15, 5:15] = 2
    spec = {"type": "min_area", "classes": ["dent"], "min": 49, "unit": "mm2"}
    assert verdict([spec], lab, pixel_size=0.7).decision == Decision.FAIL
    at_limit = {"type": "max_area", "classes": ["dent"], "max": 49, "unit": "mm2"}
    assert verdict([at_limit], lab, pixel_size=0.7).decision == Decision.PASS


def test_postprocess_remove_small_in_mm2_keeps_a_component_of_exactly_the_minimum():
    from inspect_core.runtime.postprocess import RemoveSmallRegions

    lab = np.zeros((40, 40), np.uint8)
    lab[5:15, 5:15] = 1  # 100 px = 49 mm² at 0.7 mm/px
    probs = np.zeros((3, 40, 40), np.float32)
    assert (RemoveSmallRegions(min_mm2={1: 49}, pixel_size_mm=0.7)(lab, probs) == lab).all()
    assert not RemoveSmallRegions(min_mm2={1: 49.01}, pixel_size_mm=0.7)(lab, probs).any()


def test_postprocess_old_name_min_area_is_still_remove_small():
    """Recipes and station overrides written before the step was renamed still load; its
    ranges still apply, and messages name the type as written."""
    from inspect_core.runtime.postprocess import RemoveSmallRegions, build_steps

    for name in ("remove_small", "min_area"):
        (step,) = build_steps([{"type": name, "default_px": 15}]).steps
        assert step == RemoveSmallRegions(default_px=15)
        with pytest.raises(ValueError, match=rf"postprocess\[0\] \({name}\): default_px must be"):
            build_steps([{"type": name, "default_px": 1e9}])
        with pytest.raises(RecipeError, match=rf"postprocess\[0\] \({name}\): default_px"):
            Recipe("r", model=Path("m.onnx"), postprocess=[{"type": name, "default_px": -1}])


def l_and_dot():
    """A large L-shaped scratch whose bounding box holds a separate 16-px scratch."""
    labels = np.zeros((80, 80), np.uint8)
    labels[10:13, 10:60] = 1
    labels[10:60, 10:13] = 1
    labels[40:44, 40:44] = 1
    return labels


def test_roi_judges_each_region_by_its_own_pixels():
    around_dot = [[35, 35], [50, 35], [50, 50], [35, 50]]
    # the dot (16 px) is below min_area; the L (291 px) is not in the ROI, only its bbox is
    spec = {"type": "roi", "polygon": around_dot, "classes": ["scratch"], "min_area": 50}
    assert verdict([spec], l_and_dot()).decision == Decision.PASS
    v = verdict([{**spec, "min_area": 10}], l_and_dot())
    assert [v.regions[i].area_px for i in v.hits[0].regions] == [16]
    # the L lies wholly inside an L-shaped ROI that leaves the dot out
    l_roi = [[5, 5], [65, 5], [65, 15], [15, 15], [15, 65], [5, 65]]
    v = verdict(
        [{"type": "roi", "polygon": l_roi, "classes": ["scratch"], "mode": "inside"}], l_and_dot()
    )
    assert [v.regions[i].area_px for i in v.hits[0].regions] == [291]


def test_roi_polygon_units_are_explicit_when_ambiguous():
    spec = {"type": "roi", "classes": ["scratch"]}
    with pytest.raises(RuleConfigError, match="units"):  # an overshooting fraction
        build_rules(
            [{**spec, "polygon": [[-0.05, 0.5], [1.05, 0.5], [1.05, 1.0]]}], BUILTIN_RULES, CLASSES
        )
    with pytest.raises(RuleConfigError, match="outside 0..1"):
        build_rules(
            [{**spec, "polygon": [[0, 0], [50, 0], [50, 50]], "units": "fraction"}],
            BUILTIN_RULES,
            CLASSES,
        )
    # [[0,0],[1,0],[1,1],[0,1]] is the whole image as fractions, a 2x2 px square as pixels
    unit_square = [[0, 0], [1, 0], [1, 1], [0, 1]]
    assert verdict([{**spec, "polygon": unit_square}], blobs()).decision == Decision.FAIL
    assert (
        verdict([{**spec, "polygon": unit_square, "units": "px"}], blobs()).decision
        == Decision.PASS
    )
    # a polygon entirely outside the image is a configuration error, not a silent PASS
    with pytest.raises(RuleConfigError, match="outside the 100x100 image"):
        verdict([{**spec, "polygon": [[500, 500], [600, 500], [600, 600]]}], blobs())


def test_roi_coverage_without_class_pixels_is_zero_and_lists_only_regions_in_the_roi():
    top_left = [[0, 0], [40, 0], [40, 40], [0, 40]]
    spec = {"type": "roi_coverage", "polygon": top_left, "classes": ["dent"], "max_ratio": 0.0}
    assert verdict([spec], blobs()).decision == Decision.PASS  # no dent pixel in the ROI
    v = verdict([{**spec, "classes": ["scratch"]}], blobs())
    assert v.decision == Decision.FAIL
    # the 100-px scratch is in the ROI, the 4-px one at (80, 5) is not
    assert [v.regions[i].area_px for i in v.hits[0].regions] == [100]


def test_review_band_keeps_fail_outside_the_band_and_low_zero_reviews_everything_below_high():
    fail = {"type": "min_area", "min": 50}
    band = {"type": "review_band", "low": 0.5, "high": 0.8}
    assert verdict([fail, band], blobs(), conf=0.4).decision == Decision.FAIL
    assert verdict([fail, band], blobs(), conf=0.8).decision == Decision.FAIL  # [low, high)
    assert verdict([fail, {**band, "low": 0.0}], blobs(), conf=0.4).decision == Decision.REVIEW


def test_rule_params_refuse_an_ambiguous_rule_name(tmp_path):
    r = Recipe(
        "x",
        tmp_path / "m.onnx",
        rules=[
            {"type": "roi", "polygon": [[0, 0], [1, 0], [1, 1]]},
            {"type": "roi", "polygon": [[0, 0], [0, 1], [1, 1]]},
        ],
    )
    with pytest.raises(Exception, match="2 rules named 'roi'"):
        r.with_overrides({"rule_params": {"roi": {"min_area": 5}}})
