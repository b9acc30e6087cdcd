"""Synthetic defects (what ``--features synthetic`` learns from) and the network trained on
them: each defect changes only the pixels its mask holds, a run in seconds exports a model the
runtime reads, and its card says it learned from good images alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
from anomaly_kit import make_dataset, texture
from click.testing import CliRunner

from inspect_core.anomaly.synthetic import KINDS, MIN_CHANGE, add_defect
from inspect_core.cli import cli
from inspect_core.runtime.onnx_model import OnnxModel


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("channels", [1, 3])
def test_a_defect_changes_only_what_its_mask_holds(kind, channels):
    rng = np.random.default_rng(3)
    img = np.repeat(texture(rng, (96, 120))[..., None], channels, axis=2)
    donor = np.repeat(texture(rng, (64, 64))[..., None], channels, axis=2)
    marked = 0
    for seed in range(12):
        made = add_defect(img, donor, np.random.default_rng(seed), kind)
        assert made.kind == kind and made.image.shape == img.shape
        assert made.image.dtype == np.uint8 and made.mask.shape == img.shape[:2]
        change = np.abs(made.image.astype(int) - img.astype(int)).max(axis=2)
        # outside the mask nothing changed by a visible amount; inside, every pixel did
        assert (change[made.mask == 0] < MIN_CHANGE).all()
        assert (change[made.mask == 1] >= MIN_CHANGE).all()
        marked += int(made.mask.any())
    assert marked >= 10  # nearly every draw makes a visible defect


def test_the_same_seed_makes_the_same_defect_and_bad_input_is_refused():
    rng = np.random.default_rng(0)
    img = texture(rng, (64, 64))[..., None]
    a = add_defect(img, img, np.random.default_rng(7))
    b = add_defect(img, img, np.random.default_rng(7))
    assert a.kind == b.kind and (a.image == b.image).all() and (a.mask == b.mask).all()
    with pytest.raises(ValueError, match="unknown synthetic defect 'dent'"):
        add_defect(img, img, rng, "dent")
    with pytest.raises(ValueError, match=r"give \(H, W, C\)"):
        add_defect(img[..., 0], img, rng)


def test_a_short_run_exports_a_model_the_runtime_reads(tmp_path):
    data = make_dataset(tmp_path / "texture", good=6, defects=2)
    args = ["train", "--data", data, "--out", tmp_path / "run", "--kind", "anomaly"]
    args += ["--features", "synthetic", "--steps-per-epoch", "3", "--width", "4", "--size", "32"]
    res = CliRunner().invoke(cli, [str(a) for a in args])
    assert res.exit_code == 0, res.output + str(res.exception)
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    arch = card["architecture"]
    assert arch["kind"] == "unet on synthetic defects" and arch["steps"] == 3
    assert arch["config"]["width"] == 4 and arch["crop"] == 32
    assert card["features"]["source"] == "synthetic"
    assert card["features"]["trained_on"] == "texture"
    assert "no real defect" in card["features"]["learned_from"]
    assert card["dataset"]["defect_images_trained_on"] == 0
    assert card["training"]["steps"] == 3 and card["training"]["minutes"] == 15.0
    model = OnnxModel(tmp_path / "run" / "model.onnx", required=True)
    assert model.classes == ["background", "anomaly"]
    probs = model.probabilities(np.full((40, 56), 120, np.uint8))
    assert probs.shape == (2, 40, 56) and np.isfinite(probs).all()
    # its U-Net is where a segmentation model of the same product starts (--init-from)
    from inspect_core.training.init_from import open_init_source

    source = open_init_source(str(tmp_path / "run" / "model.onnx"))
    assert source.config is not None and source.config.width == 4
    assert source.classes == ["background", "anomaly"]
