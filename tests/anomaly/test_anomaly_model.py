"""A good-only model trained on small generated textures (seconds, fixed filters): it exports
with its card, loads through the runtime unchanged, flags a bright blob as class ``anomaly``,
passes good images, and its threshold keeps its false-reject target."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from anomaly_kit import make_dataset, make_encoder
from click.testing import CliRunner

from inspect_core.anomaly.config import AnomalyConfig
from inspect_core.anomaly.split import split_good
from inspect_core.cli import cli
from inspect_core.data.datasets import open_dataset
from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.runtime.postprocess import argmax_labels

SMALL = {"bank_size": 400, "pool_size": 4000}


def said(res) -> str:
    """What a command told the person: its output, or the error the CLI prints."""
    return res.output + (str(res.exception) if res.exception else "")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    from inspect_core.training.anomaly.fit import train_anomaly

    root = tmp_path_factory.mktemp("anomaly")
    data = make_dataset(root / "texture")
    card = train_anomaly(
        AnomalyConfig(data=data, out=root / "run", features="filters", **SMALL), log=lambda s: None
    )
    return root / "run", card


def test_card_says_what_it_was_fitted_on_and_what_it_scored(trained):
    run, card = trained
    assert card["kind"] == "anomaly" and card["classes"] == ["background", "anomaly"]
    assert card["features"]["trained_on"] is None
    assert card["features"]["label_leak"] == "saw no defect of texture"
    assert card["dataset"]["defect_images_trained_on"] == 0
    split = card["validation_split"]
    assert split["groups"] == {"bank": ["g0", "g1"], "fit": ["g2"], "check": ["g3"]}
    assert card["threshold"]["fit_images"] == 12 and card["threshold"]["fit_frr"] <= 0.01
    check = card["scores"]["check"]
    assert check["defective_images"] == 4 and check["images"] == 16
    assert check["image_auroc"] >= 0.99 and check["pixel_auroc"] >= 0.98
    assert card["check"]["false_reject_rate"] <= 0.1
    assert json.loads((run / "model.json").read_text())["sha256"] == card["sha256"]


def test_runtime_flags_the_blob_and_passes_good_images(trained):
    run, card = trained
    model = OnnxModel(run / "model.onnx", required=True)
    assert model.check is not None and model.check.status == "verified"
    assert model.classes == ["background", "anomaly"]
    ds = open_dataset(run.parent / "texture", "train")
    flagged_good = 0
    for i, s in enumerate(ds.samples):
        if "_g3_" not in s.image.name:  # the check group: no fitting saw it
            continue
        img, mask = ds.load(i)
        labels = argmax_labels(model.probabilities(img))
        if mask.any():
            assert (labels[mask > 0] == 1).mean() >= 0.8, s.image.name
            far = np.ones_like(mask, bool)
            ys, xs = np.nonzero(mask)
            far[max(ys.min() - 8, 0) : ys.max() + 9, max(xs.min() - 8, 0) : xs.max() + 9] = False
            assert not (labels[far] == 1).any(), s.image.name
        else:
            flagged_good += int((labels == 1).any())
    assert flagged_good / 12 == pytest.approx(card["check"]["false_reject_rate"])


def test_tiled_inference_gives_the_same_shape_and_decision(trained):
    run, _ = trained
    model = OnnxModel(run / "model.onnx", required=True)
    ds = open_dataset(run.parent / "texture", "train")
    img = ds.load(len(ds) - 1)[0]  # a blob image
    whole = argmax_labels(model.probabilities(img))
    tiled = argmax_labels(model.probabilities(img, tile=32))
    assert tiled.shape == whole.shape == img.shape
    assert (tiled == 1).any() and (whole == 1).any()


def test_second_output_is_the_raw_score(trained):
    import onnxruntime as ort

    run, card = trained
    sess = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["logits", "anomaly_map"]
    x = np.random.default_rng(0).random((1, 1, 40, 72), dtype=np.float32)
    logits, amap = sess.run(None, {"image": x})
    assert logits.shape == (1, 2, 40, 72) and amap.shape == (1, 1, 40, 72)
    t = card["threshold"]
    expect = (amap[:, 0] - t["value"]) / t["scale"]
    np.testing.assert_allclose(logits[:, 1], expect, atol=1e-4)
    assert not logits[:, 0].any()


def test_encoder_of_another_product_is_used_and_recorded(tmp_path):
    from inspect_core.training.anomaly.fit import train_anomaly

    data = make_dataset(tmp_path / "texture", good=6, defects=2)
    enc = make_encoder(tmp_path / "other.pt", "other-product")
    cfg = AnomalyConfig(data=data, out=tmp_path / "run", features=f"encoder:{enc}", **SMALL)
    card = train_anomaly(cfg, log=lambda s: None)
    assert card["features"]["trained_on"] == "other-product"
    assert card["features"]["source"] == f"encoder:{enc}"
    assert card["architecture"]["feature_channels"] == 8 + 16
    assert OnnxModel(tmp_path / "run" / "model.onnx").classes == ["background", "anomaly"]


def test_cli_refuses_an_encoder_trained_on_the_same_product(tmp_path):
    data = make_dataset(tmp_path / "texture", good=4, defects=1)
    enc = make_encoder(tmp_path / "tile.pt", "texture")
    args = ["train", "--data", data, "--out", tmp_path / "run", "--kind", "anomaly"]
    res = CliRunner().invoke(cli, [str(a) for a in [*args, "--features", f"encoder:{enc}"]])
    assert res.exit_code != 0
    assert "trained on texture" in said(res) and "never its feature source" in said(res)
    assert not (tmp_path / "run" / "model.onnx").exists()
    enc.with_suffix(".json").unlink()  # what it saw is unknown: refused too
    res = CliRunner().invoke(cli, [str(a) for a in [*args, "--features", f"encoder:{enc}"]])
    assert res.exit_code != 0 and "no model card" in said(res)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--features", "random"], "add --kind anomaly"),
        (["--refine-defects", "3"], "add --kind anomaly"),
        (["--kind", "anomaly", "--epochs", "3"], "--epochs: not used by --kind anomaly"),
        (
            ["--kind", "anomaly", "--features", "filters", "--width", "8"],
            "--width: not used by --kind anomaly --features filters",
        ),
        (["--kind", "anomaly", "--features", "imagenet"], "unknown feature source"),
    ],
)
def test_cli_refuses_options_that_do_not_apply(tmp_path, extra, message):
    data = make_dataset(tmp_path / "texture", good=4, defects=0)
    args = ["train", "--data", data, "--out", tmp_path / "run", *extra]
    res = CliRunner().invoke(cli, [str(a) for a in args])
    assert res.exit_code != 0 and message in said(res)


def test_cli_trains_a_good_only_model(tmp_path):
    data = make_dataset(tmp_path / "texture", groups=0, good=20, defects=3)
    args = ["train", "--data", data, "--out", tmp_path / "run", "--kind", "anomaly"]
    args += ["--features", "filters"]
    res = CliRunner().invoke(cli, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    assert "image_auroc" in res.output and (tmp_path / "run" / "model.json").is_file()
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    assert card["validation_split"]["groups"] == {}
    assert split_good(data, None, None).check.samples[-1].mask is not None


def test_runtime_side_imports_no_torch(trained):
    run, _ = trained
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None  # any import of torch fails
        import inspect_core.anomaly, inspect_core.anomaly.config, inspect_core.anomaly.sources
        import inspect_core.anomaly.split, inspect_core.anomaly.threshold
        import inspect_core.anomaly.card, inspect_core.commands.train_anomaly, inspect_core.cli
        import numpy as np
        from inspect_core.runtime.onnx_model import OnnxModel
        m = OnnxModel({str(run / "model.onnx")!r}, required=True)
        p = m.probabilities(np.full((48, 48), 120, np.uint8))
        assert p.shape == (2, 48, 48)
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


@pytest.mark.parametrize("groups", [4, 0])
def test_a_few_labelled_defects_refine_the_threshold_and_are_not_scored(tmp_path, groups):
    from inspect_core.training.anomaly.fit import train_anomaly

    data = make_dataset(tmp_path / "texture", groups=groups, good=12 if groups else 30, defects=3)
    cfg = AnomalyConfig(
        data=data, out=tmp_path / "run", features="filters", refine_defects=2, **SMALL
    )
    card = train_anomaly(cfg, log=lambda s: None)
    refined = card["threshold"]["refined"]
    assert refined["defect_images"] == 2 and refined["after"] <= refined["before"]
    assert card["threshold"]["value"] == refined["after"]
    split = card["validation_split"]
    assert split["refine_defect_images"] == 2
    # with groups they come from the fit group; by image they leave the check images
    defective = card["scores"]["check"]["defective_images"]
    assert defective == (3 if groups else 1)


def test_refining_without_any_labelled_defect_says_so(tmp_path):
    data = make_dataset(tmp_path / "texture", groups=4, good=6, defects=0)
    args = ["train", "--data", data, "--out", tmp_path / "run", "--kind", "anomaly"]
    args += ["--features", "filters", "--refine-defects", "3"]
    res = CliRunner().invoke(cli, [str(a) for a in args])
    assert res.exit_code != 0 and "no labelled defect image to refine with" in said(res)
