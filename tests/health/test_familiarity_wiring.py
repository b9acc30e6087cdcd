"""The familiarity score where inspections happen (issue 25 items 1 and 3): a model file with
the ``features`` output gives them from the same runs as its probabilities (each tile and
test-time copy averaged, alone or in a batch), an inspector loads the familiarity shipped
beside the file that runs, and an image unlike the training images is REVIEW "unfamiliar
image" in ``inspect predict``, in a station and in its records, never a confident PASS."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from familiar_kit import familiar_model, line_image, other_product

from inspect_core.cli import cli
from inspect_core.commands import predict as predict_mod
from inspect_core.config.health import HealthSettings
from inspect_core.errors import ModelError
from inspect_core.health.familiarity import familiarity_path
from inspect_core.health.familiarity_run import FeatureRun
from inspect_core.runtime.inspector import Inspector
from inspect_core.runtime.model_file import edit_meta
from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.runtime.recipe import Recipe
from inspect_core.types import Decision


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return familiar_model(tmp_path_factory.mktemp("familiar"))


def recipe(model, on_problem="REVIEW") -> Recipe:
    return Recipe(name="r", model=model, health=HealthSettings(on_problem=on_problem))


def test_predict_gives_the_features_the_familiarity_was_fitted_on(model, tmp_path):
    tta = tmp_path / "tta.onnx"
    shutil.copy(model, tta)
    edit_meta(tta, lambda m: m.update(tta=["h", "v"], tile_size=64))
    m = OnnxModel(tta, threads=1, verify=False)
    plain = OnnxModel(model.with_name("plain.onnx"), verify=False)
    assert m.has_features and not plain.has_features
    run = FeatureRun(tta, threads=1)
    rng = np.random.default_rng(5)
    for img in (line_image(rng, 48), line_image(rng, 150)):  # whole; 3 x 3 tiles
        out = m.predict(img)
        np.testing.assert_array_equal(out.probs, m.probabilities(img))
        np.testing.assert_allclose(out.features, run.image_features(img), rtol=1e-5)
    imgs = [line_image(rng, 48) for _ in range(3)]
    batch = m.predict_batch(imgs)  # one batched run per copy: each image its own rows
    for img, out in zip(imgs, batch):
        np.testing.assert_allclose(out.features, m.predict(img).features, rtol=1e-4)


def test_an_inspector_passes_a_line_image_and_reviews_another_product(model):
    insp = Inspector(recipe(model), threads=1)
    assert insp.familiarity is not None
    rng = np.random.default_rng(6)
    good = insp.inspect_image(line_image(rng))
    assert good.verdict.decision is Decision.PASS
    assert good.health.unfamiliar is False and 0.0 < good.health.familiarity <= 1.0
    odd = insp.inspect_image(other_product(rng))
    assert odd.verdict.decision is Decision.REVIEW
    assert odd.verdict.hits[0].rule == "familiarity"
    assert odd.verdict.hits[0].message.startswith("unfamiliar image: unlike the training")
    assert (odd.health.unfamiliar, odd.health.familiarity, odd.health.flag) == (
        True,
        0.0,
        "unfamiliar",
    )


def test_a_batch_of_frames_is_judged_as_frames_one_by_one(model):
    insp = Inspector(recipe(model, on_problem="FAIL"), threads=1)
    rng = np.random.default_rng(7)
    frames = [line_image(rng), other_product(rng), line_image(rng)]
    runs = insp.forward(frames)
    got = [insp.judge_probs(f, r.probs, r.features).verdict.decision for f, r in zip(frames, runs)]
    assert got == [Decision.PASS, Decision.FAIL, Decision.PASS]
    assert all(r.features is not None and r.features.shape == (24,) for r in runs)


def test_record_only_keeps_the_verdict_and_still_records_the_familiarity(model):
    insp = Inspector(recipe(model, on_problem="record"), threads=1)
    odd = insp.inspect_image(other_product(np.random.default_rng(8)))
    assert odd.verdict.decision is Decision.PASS and odd.health.unfamiliar is True


def test_a_familiarity_file_of_another_model_is_refused_naming_both(model, tmp_path):
    other = tmp_path / "model.onnx"
    shutil.copy(model, other)
    edit_meta(other, lambda m: m.update(tile_size=96))  # another file: another sha256
    shutil.copy(familiarity_path(model), familiarity_path(other))
    with pytest.raises(ModelError, match="model.familiarity.npz: fitted for the model with"):
        Inspector(recipe(other), threads=1)


def test_a_familiarity_file_beside_a_model_without_the_features_output_is_refused(model, tmp_path):
    plain = tmp_path / "plain.onnx"
    shutil.copy(model.with_name("plain.onnx"), plain)
    shutil.copy(familiarity_path(model), familiarity_path(plain))
    with pytest.raises(ModelError, match="no 'features' output"):
        Inspector(recipe(plain), threads=1)


def test_without_a_familiarity_file_nothing_is_checked(model, tmp_path):
    bare = tmp_path / "bare.onnx"
    shutil.copy(model, bare)
    insp = Inspector(recipe(bare), threads=1)
    result = insp.inspect_image(other_product(np.random.default_rng(9)))
    assert insp.familiarity is None and result.health.familiarity is None
    assert result.verdict.decision is Decision.PASS


def test_predict_json_gives_each_image_its_familiarity(model, tmp_path, monkeypatch):
    monkeypatch.setattr(predict_mod, "_recipe", lambda *a: recipe(model))
    rng = np.random.default_rng(10)
    paths = [tmp_path / "line.png", tmp_path / "other.png"]
    for p, img in zip(paths, (line_image(rng), other_product(rng))):
        cv2.imwrite(str(p), img)
    args = ["predict", "--plugin", "p", "--recipe", "r", *map(str, paths), "--json"]
    res = CliRunner().invoke(cli, [*args, "--no-overlay"])
    assert res.exit_code == 3, res.output  # some REVIEW
    line, other = (json.loads(x) for x in res.stdout.splitlines())
    assert (line["verdict"], line["unfamiliar"], line["health_flag"]) == ("PASS", False, "ok")
    assert line["familiarity"] > 0.0
    assert (other["verdict"], other["unfamiliar"], other["familiarity"]) == ("REVIEW", True, 0.0)


def test_a_station_records_each_images_familiarity_from_its_batched_runs(model, tmp_path):
    from inspect_db.records.recorder import Recorder
    from inspect_stations.config.station import parse_config
    from inspect_stations.pipeline.daemon import Station

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    rng = np.random.default_rng(12)
    for i in range(3):  # same-size frames: the station's model thread batches them
        cv2.imwrite(str(inbox / f"line{i}.png"), line_image(rng))
        cv2.imwrite(str(inbox / f"other{i}.png"), other_product(rng))
    url = f"sqlite:///{tmp_path / 'records.db'}"
    table = {
        "station": {"name": "s", "plugin": "x", "recipe": "x", "until_empty": True},
        "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.02},
        "database": {"url": url},
    }
    cfg = parse_config(table, tmp_path)
    assert Station(cfg, recipe=recipe(model)).run(install_signals=False) == 0
    with Recorder(url) as rec, rec.engine.connect() as c:
        rows = c.exec_driver_sql(
            "SELECT source, verdict, familiarity, health_flag FROM inspection"
        ).all()
    got = {r.source.rsplit("/", 1)[-1]: r for r in rows}
    assert len(got) == 6
    for name, r in got.items():
        if name.startswith("line"):
            assert (r.verdict, r.health_flag) == ("PASS", "ok") and r.familiarity > 0
        else:
            assert (r.verdict, r.health_flag, r.familiarity) == ("REVIEW", "unfamiliar", 0.0)
