"""Recipes against their model: class names checked at load (with the recipe and its file), the
model card carried to the records, and one odd image never stopping a batch."""

import json
import re
import types

import numpy as np
import pytest

from inspect_core.cards import sha256_file
from inspect_core.errors import InspectError, ModelError
from inspect_core.plugin_api import manager as plugins
from inspect_core.plugin_api.hookspecs import hookimpl
from inspect_core.runtime.inspector import Inspector
from inspect_core.runtime.recipe import Domain, Recipe, RecipeError
from inspect_core.types import Decision

CLASSES = ["background", "scratch", "dent"]


def toml_value(v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(v)


def recipe(tiny_model, tmp_path, **toml) -> Recipe:
    """A recipe written as TOML next to a copy of the tiny model (so messages name a file)."""
    import shutil

    model = tmp_path / "m.onnx"
    if not model.exists():
        shutil.copy(tiny_model, model)
    lines = ['name = "wood"', 'model = "m.onnx"']
    for k, v in toml.items():
        lines.append(f"{k} = {toml_value(v)}")
    path = tmp_path / "wood.toml"
    path.write_text("\n".join(lines) + "\n")
    return Recipe.from_toml(path)


def write_card(tmp_path, classes=CLASSES, sha=None):
    model = tmp_path / "m.onnx"
    (tmp_path / "m.json").write_text(
        json.dumps({"classes": classes, "sha256": sha or sha256_file(model)})
    )


@pytest.mark.parametrize(
    "toml,words",
    [
        ({"rules": [{"type": "min_area", "classes": ["scrach"], "min": 5}]}, "scrach"),
        ({"region_classes": ["knot"]}, "knot"),
        ({"coverage_classes": ["grain"]}, "grain"),
        ({"postprocess": [{"type": "min_area", "min_px": {"dnet": 5}}]}, "dnet"),
        ({"postprocess": [{"type": "open", "classes": ["scratches"]}]}, "scratches"),
    ],
)
def test_unknown_class_names_are_refused_naming_recipe_and_file(tiny_model, tmp_path, toml, words):
    r = recipe(tiny_model, tmp_path, **toml)
    with pytest.raises(RecipeError) as e:
        Inspector(r)
    msg = str(e.value)
    assert words in msg and "recipe wood" in msg and "wood.toml" in msg and "scratch" in msg
    assert isinstance(e.value, InspectError)  # exit code 2 with this message, no traceback


def test_region_rule_on_a_class_without_regions_is_refused(tiny_model, tmp_path):
    r = recipe(
        tiny_model,
        tmp_path,
        region_classes=["scratch"],
        rules=[{"type": "min_area", "classes": ["dent"], "min": 5}],
    )
    with pytest.raises(RecipeError, match="could never fire"):
        Inspector(r)
    # roi_coverage reads the label map: any class of the model will do
    ok = recipe(
        tiny_model,
        tmp_path,
        region_classes=["scratch"],
        rules=[{"type": "roi_coverage", "classes": ["dent"], "max_ratio": 0.5}],
    )
    Inspector(ok)


@pytest.mark.parametrize(
    "toml,words",
    [
        ({"region_classes": ["scratch", "scratch"]}, "names ['scratch'] twice"),
        ({"coverage_classes": ["dent", "dent"]}, "names ['dent'] twice"),
        ({"postprocess": [{"type": "min_area", "min_px": 15}]}, "min_px = { CLASS = VALUE }"),
        ({"postprocess": [{"type": "open", "classes": "scratch"}]}, "a list of class names"),
        (
            {"postprocess": [{"type": "min_area", "min_mm2": {"scratch": 0.5}}]},
            "min_mm2 but there is no pixel_size_mm",
        ),
    ],
)
def test_recipe_tables_that_would_fail_or_mislead_on_every_image_are_refused_at_load(
    tiny_model, tmp_path, toml, words
):
    with pytest.raises(RecipeError, match=re.escape(words)):
        Inspector(recipe(tiny_model, tmp_path, **toml))


def test_a_setting_after_the_last_samples_table_is_refused(tiny_model, tmp_path):
    import shutil

    shutil.copy(tiny_model, tmp_path / "m.onnx")
    (tmp_path / "s.png").write_bytes(b"")
    path = tmp_path / "wood.toml"
    path.write_text(
        'name = "wood"\nmodel = "m.onnx"\n[[samples]]\nimage = "s.png"\nexpected = "PASS"\n'
        "pixel_size_mm = 0.05\n"  # meant for the recipe, lands in the sample table
    )
    with pytest.raises(RecipeError, match=r"samples\[0\]\.pixel_size_mm: unknown key.*move it"):
        Recipe.from_toml(path)


def test_default_px_leaves_classes_with_their_own_minimum_alone():
    from inspect_core.runtime.postprocess import RemoveSmallRegions

    step = RemoveSmallRegions(min_mm2={1: 0.5}, pixel_size_mm=0.1, default_px=200, min_px={2: 3})
    assert step.threshold(1) == 50  # 0.5 mm² at 0.1 mm/px, not raised to default_px
    assert step.threshold(2) == 3 and step.threshold(3) == 200


def test_mm2_rule_without_a_pixel_size_is_refused_at_load(tiny_model, tmp_path):
    rules = [{"type": "min_area", "min": 1.5, "unit": "mm2"}]
    with pytest.raises(RecipeError, match="pixel_size_mm"):
        Inspector(recipe(tiny_model, tmp_path, rules=rules))
    Inspector(recipe(tiny_model, tmp_path, rules=rules, pixel_size_mm=0.1))


def test_plugin_load_reports_a_misspelt_class_when_the_card_names_the_classes(tiny_model, tmp_path):
    r = recipe(tiny_model, tmp_path, rules=[{"type": "max_count", "classes": ["dnet"]}])
    write_card(tmp_path)
    mod = types.ModuleType("woodplug")

    @hookimpl
    def register_domains(register):
        register(Domain("wood", [r]))

    mod.register_domains = register_domains
    reg = plugins.load_plugins(extra=[("woodplug", mod)])
    (reason,) = [f.reason for f in reg.failures if f.plugin == "woodplug"]
    assert "dnet" in reason and "wood.toml" in reason and "wood" not in reg.domains


def test_inspection_names_the_model_card_only_when_it_matches_the_model(tiny_model, tmp_path):
    r = recipe(tiny_model, tmp_path)
    assert Inspector(r).model_card is None  # no card
    write_card(tmp_path)
    insp = Inspector(r).inspect_file(tmp_path / "missing.png")[0]
    assert insp.model_card == str(tmp_path / "m.json")
    assert insp.to_dict()["model_card"] == str(tmp_path / "m.json")
    write_card(tmp_path, sha="0" * 64)  # a card left beside another model: refused
    with pytest.raises(ModelError, match="0" * 64):
        Inspector(r)


def test_an_image_that_breaks_the_chain_is_an_error_record_not_a_crash(tiny_model, tmp_path):
    import cv2

    r = recipe(tiny_model, tmp_path)
    r.preprocess = lambda img: img[:, :, None, None]  # a plugin preprocess gone wrong
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.zeros((20, 20), np.uint8))
    insp, result = Inspector(r).inspect_file(path)
    assert result is None and insp.verdict.decision == Decision.ERROR
    assert "a.png" in insp.error and "inspection failed" in insp.error


def test_recipe_file_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\nmodel = "m.onnx"\nthreshold = 3\n')
    with pytest.raises(RecipeError, match="bad.toml: threshold: unknown key"):
        Recipe.from_toml(path)
    path.write_text('name = "x"\nmodel = "m.onnx"\n[[samples]]\nimage = "a.png"\n')
    with pytest.raises(RecipeError, match="bad.toml.*samples\\[0\\].*expected"):
        Recipe.from_toml(path)
    path.write_text('name = "x"\nmodel = "m.onnx"\npreprocess = [{type = "resize", width = -3}]\n')
    with pytest.raises(RecipeError, match="bad.toml.*width"):
        Recipe.from_toml(path)


def test_recorded_thresholds_include_station_overrides_that_change_the_verdict(
    tiny_model, tmp_path
):
    r = recipe(tiny_model, tmp_path, rules=[{"type": "min_area", "min": 5}])
    tuned = r.with_overrides({"region_classes": ["dent"], "rule_params": {"min_area": {"min": 9}}})
    t = tuned.thresholds()
    assert t["region_classes"] == ["dent"] and t["rules"][0]["min"] == 9
    assert r.thresholds()["region_classes"] is None and r.thresholds()["rules"][0]["min"] == 5


def test_a_json_beside_the_model_that_is_no_valid_card_refuses_it(tiny_model, tmp_path):
    """A file at the card's path that is no card (issue 10, second attack round): refused,
    naming it, since breaking the card must not get a changed model past the check."""
    r = recipe(tiny_model, tmp_path)
    (tmp_path / "m.json").write_text("[1, 2, 3]")  # some other JSON with the model's stem
    with pytest.raises(ModelError, match="m.json is not a JSON object"):
        Inspector(r)
    (tmp_path / "m.json").write_text('{"classes": ["background", "scratch", "dent"]}')
    with pytest.raises(ModelError, match="m.json has no sha256"):
        Inspector(r)


def test_a_region_of_interest_outside_one_image_is_that_images_error(tiny_model, tmp_path):
    """A pixel polygon drawn for a larger camera misses a small image: that image is ERROR with
    why, and the next image of the batch is judged."""
    import cv2

    roi = [[150, 150], [190, 150], [190, 190]]
    r = recipe(tiny_model, tmp_path, rules=[{"type": "roi", "polygon": roi, "units": "px"}])
    insp = Inspector(r)
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    cv2.imwrite(str(small), np.full((64, 64), 90, np.uint8))
    cv2.imwrite(str(large), np.full((200, 200), 90, np.uint8))
    rec, _ = insp.inspect_file(small)
    assert rec.verdict.decision == Decision.ERROR and "outside the 64x64 image" in rec.error
    rec, result = insp.inspect_file(large)
    assert rec.verdict.decision != Decision.ERROR and result is not None
