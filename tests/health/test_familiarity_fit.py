"""``inspect health familiarity`` (issue 25 item 1): an existing model, its int8 variant and its
card get the features output and a familiarity fitted on the card's training images, into a
folder (the model untouched) or in place (``--in-place``), after which the model still passes
its card check and an inspector, on whichever file runs, reviews an image of another product."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from familiar_kit import line_dataset, line_image, other_product

from inspect_core.cards import sha256_file
from inspect_core.cli import cli
from inspect_core.config.health import HealthSettings
from inspect_core.errors import ModelError
from inspect_core.health.familiarity import familiarity_path, load
from inspect_core.health.familiarity_fit import fit_model
from inspect_core.runtime import variant_export as vx
from inspect_core.runtime import variants
from inspect_core.runtime.inspector import Inspector
from inspect_core.runtime.recipe import Recipe
from inspect_core.types import Decision

VNNI = frozenset({"avx512_vnni"})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return line_dataset(tmp_path_factory.mktemp("line") / "data")


@pytest.fixture
def model(tiny_model, tmp_path, monkeypatch):
    """The tiny model, its int8 file (quantized as training/variants.py does) and a card that
    ships it and names the val split as the held-out images."""
    monkeypatch.setattr(variants, "cpu_flags", lambda: VNNI)
    monkeypatch.delenv(variants.VARIANT_ENV, raising=False)
    folder = tmp_path / "models"
    folder.mkdir()
    path = folder / "tiny.onnx"
    shutil.copy(tiny_model, path)
    vx.prepare_for_quantization(path, tmp_path / "prepared.onnx")
    rng = np.random.default_rng(0)
    calib = [rng.normal(size=(1, 1, 64, 64)).astype(np.float32) for _ in range(4)]
    vx.quantize_int8(tmp_path / "prepared.onnx", folder / "tiny.int8.onnx", calib, [], "minmax")
    entry = {"name": "int8-onnxruntime", "engine": "onnxruntime", "precision": "int8"}
    entry |= {"suffix": ".int8.onnx", "sha256": sha256_file(folder / "tiny.int8.onnx")}
    entry |= {"speedup": 2.0, "miou": 0.5, "passed": True, "shipped": True}
    card = {
        "classes": ["background", "scratch", "dent"],
        "sha256": sha256_file(path),
        "validation_split": {"source": "val split", "count": 30},
        "variants": {"reference": {"sha256": sha256_file(path)}, "list": [entry]},
    }
    path.with_suffix(".json").write_text(json.dumps(card))
    return path


def test_in_place_the_model_and_its_variant_get_the_check_and_still_pass_their_card(
    model, data, tmp_path
):
    before = {p.name: p.read_bytes() for p in model.parent.iterdir()}
    args = ["health", "familiarity", str(model), "--data", str(data), "--threads", "1"]
    res = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "out"), "--in-place", "--json"])
    assert res.exit_code == 0, res.output
    entry = json.loads(res.stdout)
    assert (entry["trained_on"], entry["held_out"]) == (60, 30)
    assert [f["file"] for f in entry["files"]] == ["tiny.onnx", "tiny.int8.onnx"]
    assert all(f["flagged_held_out"] <= 0.04 for f in entry["files"])
    card = json.loads(model.with_suffix(".json").read_text())
    assert card["familiarity"] == entry and card["sha256"] == sha256_file(model)
    assert card["variants"]["list"][0]["sha256"] == sha256_file(model.with_name("tiny.int8.onnx"))
    assert model.read_bytes() != before["tiny.onnx"]  # the copy with the features output
    insp = Inspector(Recipe(name="r", model=model, health=HealthSettings()), threads=1)
    assert insp.model.variant_name == "int8-onnxruntime"  # the variant, with its own threshold
    fam_file = model.with_name("tiny.int8.onnx")
    fam = load(familiarity_path(fam_file))
    assert insp.familiarity.model_sha256 == fam.model_sha256 == sha256_file(fam_file)
    assert insp.familiarity.threshold == fam.threshold == entry["files"][1]["threshold"]
    rng = np.random.default_rng(11)
    assert insp.inspect_image(line_image(rng)).verdict.decision is Decision.PASS
    odd = insp.inspect_image(other_product(rng))
    assert odd.verdict.decision is Decision.REVIEW and odd.health.unfamiliar
    # a model that has the features output is fitted again as it is (no second output)
    again = fit_model(model, str(data), tmp_path / "again", threads=1)
    assert again.copy.read_bytes() == model.read_bytes()


def test_into_a_folder_the_model_is_untouched_and_the_folder_can_be_registered(
    model, data, tmp_path
):
    before = model.read_bytes()
    out = tmp_path / "out"
    result = fit_model(model, str(data), out, max_train=40, threads=1)
    assert model.read_bytes() == before and result.trained_on == 40
    card = json.loads((out / "tiny.json").read_text())
    assert card["sha256"] == sha256_file(out / "tiny.onnx")  # a card vouching for the copy
    assert load(familiarity_path(out / "tiny.onnx"), out / "tiny.onnx").trained_on == 40
    with pytest.raises(ModelError, match="the model's own folder"):
        fit_model(model, str(data), model.parent, threads=1)


def test_a_model_without_its_card_or_its_variant_file_is_refused_saying_why(model, data, tmp_path):
    model.with_name("tiny.int8.onnx").unlink()
    with pytest.raises(ModelError, match="tiny.int8.onnx: its card ships this variant but"):
        fit_model(model, str(data), tmp_path / "out", threads=1)
    model.with_suffix(".json").unlink()
    res = CliRunner().invoke(cli, ["health", "familiarity", str(model), "--data", str(data)])
    assert isinstance(res.exception, ModelError)  # `inspect` prints it as "error: ..."
    assert "no model card (tiny.json) beside it" in str(res.exception)


def test_a_recipes_model_is_fitted_with_the_recipes_tiles(model, tmp_path, monkeypatch):
    """The features are pooled over the runs a recipe makes of an image: fitted with the
    recipe's tile and overlap, so that its held-out images are flagged as the fit said."""
    import inspect_core.plugin_api.resolve as resolve

    data = line_dataset(tmp_path / "big", side=100)  # 100 px images, 64 px tiles: 3 x 3
    r = Recipe(name="r", model=model, tile=64, tile_overlap=0.5, health=HealthSettings())
    monkeypatch.setattr(resolve, "find_recipe", lambda plugin, name: r)
    args = ["health", "familiarity", "--plugin", "p:r", "--data", str(data), "--threads", "1"]
    res = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "o"), "--in-place", "--json"])
    assert res.exit_code == 0, res.output
    entry = json.loads(res.stdout)
    assert entry["tiles"] == {"tile": 64, "overlap": 0.5}
    insp = Inspector(r, threads=1)
    rng = np.random.default_rng(13)
    flagged = [insp.inspect_image(line_image(rng, 100)).health.unfamiliar for _ in range(30)]
    assert sum(flagged) <= 2  # about 2% of images like the training images
    res = CliRunner().invoke(cli, ["health", "familiarity", str(model), *args[2:]])
    assert res.exit_code == 2 and "not both" in res.output
