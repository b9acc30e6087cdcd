"""What an inspection does with its image's quality (issue 25 item 3): a recipe's ``[health]``
limits checked on every frame the inspector judges; a broken one makes the verdict REVIEW (or
FAIL) with a ``quality`` hit whose message starts with the reason, never PASS; ``record`` keeps
the model's verdict; the figures and problems ride on the Inspection as a typed InputHealth."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from quality_kit import texture

from inspect_core.config.health import HealthSettings, QualityLimits, with_override
from inspect_core.health.gate import Familiarity, assess, gate
from inspect_core.runtime.inspector import Inspector
from inspect_core.runtime.recipe import Recipe, RecipeError
from inspect_core.types import Decision, InputHealth, Inspection, RuleHit, Verdict

LIMITS = QualityLimits(focus_min=0.4, mean_min=40.0, mean_max=220.0)


def sharp() -> np.ndarray:
    return texture(128, seed=3)


def blurred() -> np.ndarray:
    return cv2.GaussianBlur(texture(128, seed=3), (0, 0), 4)


def inspector(tiny_model, on_problem: str = "REVIEW", limits=LIMITS) -> Inspector:
    """The tiny model with no rules (its own verdict: PASS) and the given [health]."""
    health = None if limits is None else HealthSettings(quality=limits, on_problem=on_problem)
    return Inspector(Recipe(name="tiny", model=tiny_model, health=health))


def test_a_blurred_image_is_review_out_of_focus_and_a_sharp_one_passes(tiny_model):
    insp = inspector(tiny_model)
    bad = insp.inspect_image(blurred())
    assert bad.verdict.decision is Decision.REVIEW
    hit = bad.verdict.hits[0]
    assert hit.rule == "quality" and hit.decision is Decision.REVIEW
    assert hit.message.startswith("out of focus: focus ") and "below the least 0.4" in hit.message
    assert bad.health is not None and bad.health.flag == "quality"
    assert [p.reason for p in bad.health.problems] == ["out of focus"]
    good = insp.inspect_image(sharp())
    assert good.verdict.decision is Decision.PASS and good.verdict.hits == []
    assert good.health is not None and good.health.flag == "ok" and good.health.problems == ()
    assert good.health.quality is not None and good.health.quality.focus > 0.4


def test_on_problem_fail_fails_it_and_record_keeps_the_models_verdict(tiny_model):
    failed = inspector(tiny_model, "FAIL").inspect_image(blurred())
    assert failed.verdict.decision is Decision.FAIL
    assert failed.verdict.hits[0].rule == "quality"
    kept = inspector(tiny_model, "record").inspect_image(blurred())
    assert kept.verdict.decision is Decision.PASS and kept.verdict.hits == []
    assert kept.health is not None and kept.health.flag == "quality"  # recorded all the same
    assert kept.health.messages[0].startswith("out of focus")


def test_without_health_limits_the_figures_are_measured_and_nothing_changes(tiny_model):
    result = inspector(tiny_model, limits=None).inspect_image(blurred())
    assert result.verdict.decision is Decision.PASS and result.verdict.hits == []
    assert result.health is not None and result.health.quality is not None
    assert result.health.quality.focus < 0.4 and result.health.flag == "ok"


def test_a_broken_limit_never_lowers_a_verdict_and_its_hits_come_first():
    health = InputHealth(problems=assess(blurred(), HealthSettings(quality=LIMITS)).problems)
    model = Verdict(Decision.FAIL, [RuleHit("min_area", Decision.FAIL, "2 regions")])
    out = gate(model, health, HealthSettings(quality=LIMITS, on_problem="REVIEW"))
    assert out.decision is Decision.FAIL
    assert [h.rule for h in out.hits] == ["quality", "min_area"]
    assert model.hits == [RuleHit("min_area", Decision.FAIL, "2 regions")]  # not changed in place


def test_exposure_problems_come_before_focus():
    dark = (blurred() * 0.1).astype(np.uint8)
    health = assess(dark, HealthSettings(quality=LIMITS))
    out = gate(Verdict(Decision.PASS), health, HealthSettings(quality=LIMITS))
    assert out.hits[0].message.startswith("under-exposed: mean ")


def test_a_frame_too_small_to_measure_is_not_a_problem():
    health = assess(np.zeros((8, 8), np.uint8), HealthSettings(quality=LIMITS))
    assert health.quality is None and health.flag is None
    assert gate(Verdict(Decision.PASS), health, None).decision is Decision.PASS


class Unfamiliar:
    def __init__(self):
        self.asked = []

    def familiarity_of(self, features: np.ndarray) -> Familiarity:
        self.asked.append(features)
        return Familiarity(0.125, unfamiliar=True)


def test_an_unfamiliar_image_is_review_with_its_reason_when_its_run_gave_features():
    check, features = Unfamiliar(), np.ones(4)
    health = assess(sharp(), None, check, features)
    assert check.asked == [features]
    out = gate(Verdict(Decision.PASS), health, None)
    assert out.decision is Decision.REVIEW and out.hits[0].rule == "familiarity"
    assert out.hits[0].message.startswith("unfamiliar image")
    assert health.flag == "unfamiliar" and (health.familiarity, health.unfamiliar) == (0.125, True)
    # a run that gave no features (a model without the output) is not scored
    assert assess(sharp(), None, Unfamiliar(), None).familiarity is None


def test_inspect_file_records_the_health_and_the_json_carries_it(tiny_model, tmp_path):
    path = tmp_path / "blurred.png"
    cv2.imwrite(str(path), blurred())
    insp, _ = inspector(tiny_model).inspect_file(path)
    assert insp.verdict.decision is Decision.REVIEW and insp.health is not None
    d = insp.to_dict()
    assert d["quality_problems"][0].startswith("out of focus")
    assert set(d["quality"]) == {
        "focus",
        "clipped_dark",
        "clipped_bright",
        "mean",
        "highlights",
        "contrast",
    }
    assert (d["familiarity"], d["unfamiliar"], d["health_flag"]) == (None, None, "quality")
    assert "quality_limits_broken" not in d
    # the station's journal writes it exact and reads it back whole
    back = Inspection.from_dict(json.loads(json.dumps(insp.to_dict(exact=True))))
    assert back.health == insp.health and back.verdict == insp.verdict


def test_an_inspection_without_health_has_the_keys_as_null():
    d = Inspection("a.png", "0" * 64, 1, 1, Verdict(Decision.ERROR)).to_dict()
    assert (d["quality"], d["quality_problems"], d["unfamiliar"], d["familiarity"]) == (
        None,
        [],
        None,
        None,
    )
    assert Inspection.from_dict(d).health is None


def test_a_recipe_file_reads_its_health_table(tmp_path, tiny_model):
    path = tmp_path / "r.toml"
    text = f'name = "r"\nmodel = "{tiny_model}"\n[health]\non_problem = "FAIL"\n'
    path.write_text(text + "[health.quality]\nfocus_min = 0.3\n")
    recipe = Recipe.from_toml(path)
    assert recipe.health == HealthSettings(quality=QualityLimits(focus_min=0.3), on_problem="FAIL")
    assert recipe.thresholds()["health"]["quality"]["focus_min"] == 0.3
    path.write_text(text.replace('"FAIL"', '"fail"') + "[health.quality]\nfocus_mn = 0.3\n")
    with pytest.raises(RecipeError) as e:
        Recipe.from_toml(path)
    assert "health.on_problem" in str(e.value) and "did you mean 'focus_min'" in str(e.value)


def test_a_recipe_without_health_records_the_same_thresholds_as_before(tiny_model):
    assert "health" not in Recipe(name="r", model=tiny_model).thresholds()


def test_a_station_override_changes_on_problem_and_keeps_the_limits(tiny_model):
    recipe = Recipe(name="r", model=tiny_model, health=HealthSettings(quality=LIMITS))
    tuned = recipe.with_overrides({"health": {"on_problem": "FAIL"}})
    assert tuned.health == HealthSettings(quality=LIMITS, on_problem="FAIL")
    assert recipe.health is not None and recipe.health.on_problem == "REVIEW"  # a copy
    # a record's thresholds replay exactly what was in force
    assert recipe.with_overrides({"health": tuned.thresholds()["health"]}).health == tuned.health
    with pytest.raises(RecipeError, match="on_problem"):
        recipe.with_overrides({"health": {"on_problem": "PASS"}})
    added = Recipe(name="r", model=tiny_model).with_overrides(
        {"health": {"quality": {"focus_min": 0.5}}}
    )
    assert added.health == HealthSettings(quality=QualityLimits(focus_min=0.5))


def test_with_override_names_where():
    with pytest.raises(ValueError, match=r"^station s: health: "):
        with_override(None, {"quality": {"focus_min": -1.0}}, "station s")
