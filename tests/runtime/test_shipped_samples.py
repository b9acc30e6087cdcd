"""Every shipped recipe's sample images keep their expected verdicts (ONNX Runtime only)."""

import json

import pytest

from inspect_core.plugin_api.manager import load_plugins
from inspect_core.plugin_api.testing import assert_samples, check_plugin

SHIPPED = {
    "industrial": {"steel", "tile", "tile-anomaly", "ballscrew"},
    "aerial": {"landcover"},
    "robotics": {"driving"},
}
GOOD_ONLY = {("industrial", "tile-anomaly")}  # its finding is REVIEW: nothing is named
# every image of its dataset has a defect: its defect-free crop is unlike the whole images the
# model learned from, so input health sends it to an operator (REVIEW) instead of a PASS
NO_PASS = {("industrial", "ballscrew")}


@pytest.fixture(scope="module")
def registry():
    return load_plugins()


@pytest.mark.parametrize("plugin", sorted(SHIPPED))
def test_shipped_plugin_registers_its_recipes(plugin, registry):
    check_plugin(plugin, registry)
    names = {
        r.name
        for d, p in registry.domain_plugin.items()
        if p == plugin
        for r in registry.domains[d].recipes
    }
    assert names == SHIPPED[plugin]


@pytest.mark.parametrize("plugin,recipe", sorted((p, r) for p, rs in SHIPPED.items() for r in rs))
def test_shipped_samples_keep_their_verdicts(plugin, recipe, registry):
    results = assert_samples(plugin, recipe, registry)
    assert 3 <= len(results) <= 6
    found = "REVIEW" if (plugin, recipe) in GOOD_ONLY else "FAIL"
    clean = "REVIEW" if (plugin, recipe) in NO_PASS else "PASS"
    assert {r.expected for r in results} >= {clean, found}


@pytest.mark.parametrize("plugin,recipe", sorted((p, r) for p, rs in SHIPPED.items() for r in rs))
def test_model_cards_name_dataset_license_and_validation(plugin, recipe, registry):
    from inspect_core.cards import sha256_file
    from inspect_core.plugin_api.resolve import find_recipe

    r = find_recipe(plugin, recipe)
    card = json.loads(r.card.read_text())
    assert card["dataset"]["name"] and "license" in card["dataset"]
    assert card["sha256"] == sha256_file(r.model)
    if (plugin, recipe) in GOOD_ONLY:  # scored on a lighting group no fitting saw
        assert card["kind"] == "anomaly" and card["dataset"]["defect_images_trained_on"] == 0
        assert 0 < card["validation"]["image_auroc"] <= 1
        assert card["features"]["source"] == "synthetic"
    else:
        assert 0 < card["validation"]["miou"] <= 1


@pytest.mark.parametrize("plugin,recipe", sorted((p, r) for p, rs in SHIPPED.items() for r in rs))
def test_shipped_recipes_check_their_input_health(plugin, recipe, registry):
    """Quality limits fitted on the train split, and (segmentation models) a familiarity
    fitted for the very file that runs, fp32 or variant, and a gate sample for the variants."""
    from inspect_core.cards import sha256_file
    from inspect_core.health.familiarity import familiarity_path, load
    from inspect_core.plugin_api.resolve import find_recipe
    from inspect_core.runtime.inspector import Inspector
    from inspect_core.runtime.onnx_model import OnnxModel

    r = find_recipe(plugin, recipe)
    limits = r.health.quality if r.health is not None else None
    assert limits is not None and limits.focus_min and limits.mean_min and limits.mean_max
    if (plugin, recipe) in GOOD_ONLY:  # its anomaly map is its own measure of the unfamiliar
        return
    card = json.loads(r.card.read_text())
    assert card["familiarity"]["trained_on"] >= 50
    for variant in ("fp32", "auto"):  # auto: the int8 file on a VNNI CPU, with INSPECT_TUNE=off
        m = OnnxModel(r.model, card=r.card_path, variant=variant, required=True)
        insp = Inspector(r, registry.rules, model=m)
        file = insp.model.loaded.file
        fam = load(familiarity_path(file), file)
        assert insp.familiarity is not None and insp.familiarity.threshold == fam.threshold
    sample = card["variants"]["gate_sample"]
    assert sha256_file(r.model.with_name(sample["file"])) == sample["sha256"]
