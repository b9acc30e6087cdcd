"""The core command line: predict and evaluate on a tiny model and synthetic data."""

import json
import types

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from inspect_core.cli import cli


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        p = tmp_path / f"img{i}.png"
        cv2.imwrite(str(p), rng.integers(0, 255, (40 + i * 7, 50), np.uint8))
        paths.append(p)
    return paths


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_predict_json_overlays_and_exit_code(tiny_model, images, tmp_path):
    out = tmp_path / "ov"
    res = CliRunner().invoke(
        cli, ["predict", "--model", str(tiny_model), *map(str, images), "--out", str(out), "--json"]
    )
    lines = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    assert len(lines) == 3
    for line, img in zip(lines, images):
        assert line["source"] == str(img)
        assert line["verdict"] in ("PASS", "FAIL")
        assert (line["verdict"] == "FAIL") == bool(line["regions"])
        assert line["height"] == cv2.imread(str(img), 0).shape[0]
        assert (out / f"{img.stem}.png").is_file()
        for r in line["regions"]:
            x, y, w, h = r["bbox"]
            assert 0 <= x < line["width"] and 0 <= y < line["height"] and r["area_px"] <= w * h
    worst = {"PASS": 0, "FAIL": 4}[max((x["verdict"] for x in lines), key=["PASS", "FAIL"].index)]
    assert res.exit_code == worst


def test_predict_unreadable_image_is_an_error_record_not_a_crash(tiny_model, images, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    res = CliRunner().invoke(
        cli,
        ["predict", "--model", str(tiny_model), str(bad), str(images[0]), "--json", "--no-overlay"],
    )
    lines = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    assert lines[0]["verdict"] == "ERROR" and "broken.png" in lines[0]["error"]
    assert lines[1]["verdict"] in ("PASS", "FAIL")  # the next image is still inspected
    assert res.exit_code == 5


def test_predict_needs_a_model_or_recipe(images):
    res = CliRunner().invoke(cli, ["predict", str(images[0])])
    assert res.exit_code == 2 and "--model" in res.output


def test_evaluate_json_keys(tiny_model, tmp_path):
    root = tmp_path / "ds"
    for split in ("val",):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        rng = np.random.default_rng(1)
        for i in range(3):
            cv2.imwrite(
                str(root / split / "images" / f"{i}.png"), rng.integers(0, 255, (32, 40), np.uint8)
            )
            m = np.zeros((32, 40), np.uint8)
            m[5:10, 5:12] = i % 3
            cv2.imwrite(str(root / split / "masks" / f"{i}.png"), m)
    (root / "classes.json").write_text(json.dumps({"classes": ["background", "scratch", "dent"]}))
    res = run("evaluate", "--model", tiny_model, "--data", root, "--split", "val", "--json")
    s = json.loads(res.stdout)  # warnings go to stderr
    assert set(s) >= {
        "miou",
        "mean_dice",
        "pixel_accuracy",
        "per_class",
        "image_recall",
        "false_reject_rate",
        "images",
    }
    assert s["images"] == 3 and set(s["per_class"]) == {"background", "scratch", "dent"}
    assert set(s["per_class"]["dent"]) == {"dice", "iou", "precision", "recall"}
    assert 0 <= s["miou"] <= 1
    # the detection scores a good-only model reports too (image 0 is good, 1 and 2 defective)
    assert s["defective_images"] == 2
    for key in ("image_auroc", "pixel_auroc", "aupro", "f1_max"):
        assert 0 <= s[key] <= 1, key


def test_evaluate_rejects_class_mismatch(tiny_model, tmp_path):
    root = tmp_path / "ds"
    (root / "val" / "images").mkdir(parents=True)
    (root / "val" / "masks").mkdir(parents=True)
    cv2.imwrite(str(root / "val" / "images" / "a.png"), np.zeros((8, 8), np.uint8))
    cv2.imwrite(str(root / "val" / "masks" / "a.png"), np.zeros((8, 8), np.uint8))
    (root / "classes.json").write_text(json.dumps({"classes": ["background", "defect"]}))
    res = CliRunner().invoke(cli, ["evaluate", "--model", str(tiny_model), "--data", str(root)])
    assert res.exit_code != 0
    assert "3 classes" in str(res.exception) or "3 classes" in res.output


def main_exit(monkeypatch, capsys, *args):
    """Run ``inspect ARGS`` through the real entry point: (exit code, stdout, stderr)."""
    import sys

    from inspect_core import cli as cli_mod

    monkeypatch.setattr(sys, "argv", ["inspect", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        cli_mod.main()
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_predict_on_a_folder_without_images_is_an_error_not_a_pass(
    tiny_model, tmp_path, monkeypatch, capsys
):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    code, _, err = main_exit(monkeypatch, capsys, "predict", "--model", tiny_model, empty)
    assert code == 2 and "holds no images" in err and str(empty) in err


def test_overlays_never_overwrite_each_other_or_the_inputs(tiny_model, tmp_path):
    rng = np.random.default_rng(3)
    a, b = tmp_path / "cam1", tmp_path / "cam2"
    for folder in (a, b):
        folder.mkdir()
        cv2.imwrite(str(folder / "part.png"), rng.integers(0, 255, (30, 40), np.uint8))
    original = (a / "part.png").read_bytes()
    res = CliRunner().invoke(
        cli, ["predict", "--model", str(tiny_model), str(a), str(b), "--out", str(a), "--json"]
    )
    lines = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    paths = [line["overlay_path"] for line in lines]
    assert len(set(paths)) == 2 and str(a / "part.png") not in paths
    assert (a / "part.png").read_bytes() == original  # the input image is untouched
    for line in lines:
        assert cv2.imread(line["overlay_path"]).shape[:2] == (30, 40)


def test_predict_option_mistakes_exit_2(tiny_model, images, tmp_path, monkeypatch, capsys):
    code, _, err = main_exit(
        monkeypatch, capsys, "predict", "--model", tiny_model, images[0], "--db", "sqlite:///x.db"
    )
    assert code == 2 and "--db goes with --record" in err
    code, _, err = main_exit(
        monkeypatch, capsys, "predict", "--model", tiny_model, images[0], "--pixel-size", "0"
    )
    assert code == 2 and "--pixel-size" in err
    blocker = tmp_path / "file.txt"
    blocker.write_text("")
    code, _, err = main_exit(
        monkeypatch,
        capsys,
        "predict",
        "--model",
        tiny_model,
        images[0],
        "--out",
        blocker / "overlays",
    )
    assert code == 2 and "could not write the overlay" in err and "--out" in err


def test_overlay_banner_names_a_rule_that_decided_the_verdict():
    from inspect_core.runtime.overlay import banner_text
    from inspect_core.types import Decision, RuleHit, Verdict

    v = Verdict(
        Decision.FAIL,
        [RuleHit("max_count", Decision.REVIEW, ""), RuleHit("min_area", Decision.FAIL, "")],
    )
    assert banner_text(v) == "FAIL: min_area"
    assert banner_text(Verdict(Decision.PASS)) == "PASS"


def small_dataset(root, size=(32, 40)):
    (root / "val" / "images").mkdir(parents=True)
    (root / "val" / "masks").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(3):
        cv2.imwrite(str(root / "val" / "images" / f"{i}.png"), rng.integers(0, 255, size, np.uint8))
        m = np.zeros(size, np.uint8)
        m[5:10, 5:12] = 1 + i % 2
        cv2.imwrite(str(root / "val" / "masks" / f"{i}.png"), m)
    (root / "classes.json").write_text(json.dumps({"classes": ["background", "scratch", "dent"]}))
    return root


def test_evaluate_applies_a_recipes_preprocessing_with_its_masks(tiny_model, tmp_path):
    from inspect_core.commands.evaluate import evaluate_model
    from inspect_core.errors import DataError
    from inspect_core.runtime.onnx_model import OnnxModel
    from inspect_core.runtime.preprocess import Resize

    root = small_dataset(tmp_path / "ds")
    model = OnnxModel(tiny_model)
    seen = []

    def spy(img):
        out = Resize(width=20)(img)
        seen.append(out.shape)
        return out

    s = evaluate_model(model, root, "val", preprocess=spy)
    assert s["images"] == 3 and seen == [(16, 20)] * 3  # the model saw the resized frames
    with pytest.raises(DataError, match="not a scaling"):
        evaluate_model(model, root, "val", preprocess=lambda img: img[:, :10])


@pytest.mark.parametrize(
    "augment,says",
    [
        ("{bad", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"nope": 1}', "unknown setting 'nope'"),
        ('{"crop": 64}', "crop comes from --size"),
        ('{"rotate": NaN}', "rotate = NaN"),
        ('{"hflip": 1}', "hflip = 1: give true or false"),
        ('{"scale": "x"}', "a finite number"),
    ],
)
def test_train_augment_mistakes_are_one_line_errors(tmp_path, monkeypatch, capsys, augment, says):
    code, out, err = main_exit(
        monkeypatch,
        capsys,
        "train",
        "--data",
        tmp_path,
        "--out",
        tmp_path / "run",
        "--augment",
        augment,
    )
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def _all_defective(root, classes=("background", "scratch", "dent")):
    """A val split where every mask has a defect."""
    (root / "val" / "images").mkdir(parents=True)
    (root / "val" / "masks").mkdir(parents=True)
    rng = np.random.default_rng(2)
    for i in range(2):
        cv2.imwrite(
            str(root / "val" / "images" / f"{i}.png"), rng.integers(0, 255, (32, 40), np.uint8)
        )
        m = np.zeros((32, 40), np.uint8)
        m[4:9, 4:20] = 1 + i % 2
        cv2.imwrite(str(root / "val" / "masks" / f"{i}.png"), m)
    (root / "classes.json").write_text(json.dumps({"classes": list(classes)}))
    return root


def test_evaluate_false_reject_rate_is_null_without_defect_free_images(tiny_model, tmp_path):
    root = _all_defective(tmp_path / "ds")
    res = run("evaluate", "--model", tiny_model, "--data", root, "--json")
    s = json.loads(res.stdout)
    assert s["false_reject_rate"] is None and s["image_recall"] is not None
    assert s["undefined"] == {
        "false_reject_rate": "no image of the split is defect-free (every mask has a defect)"
    }
    res = run("evaluate", "--model", tiny_model, "--data", root)
    assert "false-reject rate n/a (no image of the split is defect-free" in res.stdout


def test_evaluate_rates_with_both_kinds_of_image_are_numbers():
    import numpy as np

    from inspect_core.data.metrics import SegmentationScores

    s = SegmentationScores(["background", "defect"])
    defect, clean = np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8)
    defect[1:3, 1:3] = 1
    s.update(defect, defect)  # a defective image found
    s.update(clean, clean)  # a clean image passed
    summ = s.summary()
    assert summ["image_recall"] == 1.0 and summ["false_reject_rate"] == 0.0
    assert "undefined" not in summ
    only_defects = SegmentationScores(["background", "defect"])
    only_defects.update(defect, defect)
    summ = only_defects.summary()
    assert summ["image_recall"] == 1.0 and summ["false_reject_rate"] is None
    assert set(summ["undefined"]) == {"false_reject_rate"}


def test_plugins_listing_fits_80_columns(monkeypatch):
    """Nothing is cut at 80 columns: every class, recipe and model path is there whole."""
    from inspect_core.commands import plugins as mod

    classes = ["sky", "building", "pole", "road", "pavement", "tree", "sign", "fence", "car"]
    classes += ["pedestrian", "bicyclist"]
    recipe = {"name": "ballscrew", "model": "plugins/industrial/models/ballscrew.onnx"}
    listing = [
        {
            "plugin": "industrial",
            "version": "0.1.0",
            "module": "m",
            "domains": [
                {
                    "name": "industrial",
                    "recipes": [
                        {**recipe, "sha256": "b958fd6d" * 8, "classes": ["background", "pitting"]}
                    ],
                },
                {
                    "name": "robotics",
                    "recipes": [
                        {
                            "name": "driving",
                            "model": "driving.onnx",
                            "sha256": "e069a79e" * 8,
                            "classes": classes,
                        }
                    ],
                },
            ],
            "rules": [],
            "sources": ["camera", "folder"],
            "sinks": [],
            "failures": [],
        }
    ]
    monkeypatch.setattr(mod, "plugin_listing", lambda: listing)
    monkeypatch.setattr(mod, "get_registry", lambda: types.SimpleNamespace(failures=[]))
    res = CliRunner().invoke(mod.plugins_cmd, [], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in res.stdout
    words = set(res.stdout.replace(",", " ").split())
    for whole in [*classes, "industrial:ballscrew", "robotics:driving", recipe["model"]]:
        assert whole in words, whole
    assert {"b958fd6db958", "e069a79ee069", "camera", "folder", "0.1.0"} <= words
