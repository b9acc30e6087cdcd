"""The familiarity end to end on a tiny exported U-Net (issue 25 item 1): features of whole
images fed as the runtime feeds them (tiles, test-time copies), a fit that flags at most its
share of held-out images and flags shifted ones, and training/fit_familiarity.py on a tiny
dataset with a card."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_model
from familiar_kit import line_dataset, line_image, other_product

from inspect_core.errors import ModelError
from inspect_core.health.familiarity import MAX_FLAGGED, familiarity_path, fit, load
from inspect_core.health.familiarity_graph import add_features
from inspect_core.health.familiarity_run import FeatureRun, average_features
from inspect_core.runtime.model_file import edit_meta
from inspect_core.runtime.onnx_model import OnnxModel

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("familiar")
    model = make_tiny_model(folder / "model.onnx")
    add_features(model, folder / "copy.onnx")
    return folder / "copy.onnx"


def test_a_fit_on_line_images_flags_few_of_them_and_the_other_product(copy):
    run = FeatureRun(copy, threads=1)
    rng = np.random.default_rng(0)
    train = np.stack([run.image_features(line_image(rng)) for _ in range(150)])
    held = np.stack([run.image_features(line_image(rng)) for _ in range(100)])
    fam = fit(train, held)
    assert fam.flagged(held) <= MAX_FLAGGED
    fresh = np.stack([run.image_features(line_image(rng)) for _ in range(100)])
    assert fam.flagged(fresh) <= 0.06  # about 2%, on images no step saw
    other = np.stack([run.image_features(other_product(rng)) for _ in range(40)])
    assert fam.flagged(other) >= 0.95
    dark = np.stack([run.image_features(line_image(rng) // 3) for _ in range(40)])
    assert fam.flagged(dark) >= 0.95
    score = fam.familiarity_of(run.image_features(other_product(rng)))
    assert score.unfamiliar and score.value == 0.0 and score.distance > fam.threshold


def test_the_logits_of_the_copy_are_those_the_runtime_computes(copy, tmp_path):
    run = FeatureRun(copy, threads=1)
    img = line_image(np.random.default_rng(1))
    original = OnnxModel(copy.with_name("model.onnx"), threads=1, verify=False, variant="fp32")
    (batch,) = run.batches(img)
    assert np.array_equal(run.run(batch)[0], original.logits(batch))


def test_tiles_and_test_time_copies_are_each_a_run_and_their_features_averaged(copy, tmp_path):
    tta = tmp_path / "tta.onnx"
    tta.write_bytes(copy.read_bytes())
    edit_meta(tta, lambda m: m.update(tta=["h", "v"], tile_size=64))
    run = FeatureRun(tta, threads=1)
    rng = np.random.default_rng(2)
    small, large = line_image(rng, 48), line_image(rng, 150)
    assert len(run.batches(small)) == 3  # the image, mirrored left-right, top-bottom
    assert np.array_equal(run.batches(small)[1], run.batches(small)[0][..., ::-1])
    batches = run.batches(large)  # 150 px at tiles of 64 with 25% overlap: 3 x 3 tiles
    assert len(batches) == 27 and all(b.shape == (1, 1, 64, 64) for b in batches)
    want = np.mean([run.run(b)[1][0] for b in batches], axis=0)
    np.testing.assert_allclose(run.image_features(large), want, rtol=1e-6)


def test_a_model_without_the_features_output_is_refused_naming_it(copy):
    plain = copy.with_name("model.onnx")
    with pytest.raises(ModelError, match="model.onnx: has no 'features' output"):
        FeatureRun(plain)
    with pytest.raises(ValueError, match="no run's features"):
        average_features([])


def _load_script(monkeypatch: pytest.MonkeyPatch):
    """training/fit_familiarity.py as a module (its folder on the path, as when it runs)."""
    name = "fit_familiarity_script"
    spec = importlib.util.spec_from_file_location(name, ROOT / "training" / "fit_familiarity.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.syspath_prepend(str(ROOT / "training"))
    monkeypatch.setitem(sys.modules, name, module)  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def test_the_script_writes_the_copy_and_its_familiarity_and_reports(tmp_path, monkeypatch, capsys):
    data = line_dataset(tmp_path / "data")
    (tmp_path / "models").mkdir()
    model = make_tiny_model(tmp_path / "models" / "tiny.onnx")
    shipped = model.read_bytes()
    val = [f"val/images/{i:03d}.png" for i in range(30)]
    card = {
        "classes": ["background", "scratch", "dent"],
        "dataset": {"name": "data", "train_images": 60},
        "validation_split": {"source": "val split", "count": 30, "images": val},
    }
    model.with_suffix(".json").write_text(json.dumps(card))
    out = tmp_path / "out"
    argv = ["fit_familiarity.py", str(model), "--data", str(data), "--out", str(out)]
    argv += ["--shifted", "--rounds", "2", "--threads", "1"]
    monkeypatch.setattr(sys, "argv", argv)
    _load_script(monkeypatch).main()
    said = capsys.readouterr().out
    assert model.read_bytes() == shipped  # the model itself is never written
    copy = out / "tiny.onnx"
    fam = load(familiarity_path(copy), copy)  # fitted for the copy, not the model
    assert fam.trained_on == 60 and len(fam.calibration) == 30 and not fam.calibrated
    summary = json.loads((out / "tiny.familiarity.json").read_text())
    assert summary["held_out"] == 30 and summary["flagged_held_out"] == 0.0
    assert summary["flagged"]["darkened"] >= 0.9 and summary["flagged"]["blurred"] >= 0.9
    saved = np.load(out / "tiny.features.npz")
    assert saved["held-out"].shape == (30, 24) and saved["over-exposed"].shape == (30, 24)
    assert [t["file"] for t in summary["timings"]] == ["tiny.onnx"]
    assert "held-out images flagged: 0.0%" in said and "with the features output" in said
