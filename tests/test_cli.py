"""The core command line: predict and evaluate on a tiny model and synthetic data."""
import json

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
    res = CliRunner().invoke(cli, ["predict", "--model", str(tiny_model), *map(str, images),
                                   "--out", str(out), "--json"])
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
    worst = {"PASS": 0, "FAIL": 4}[max((l["verdict"] for l in lines), key=["PASS", "FAIL"].index)]
    assert res.exit_code == worst


def test_predict_unreadable_image_is_an_error_record_not_a_crash(tiny_model, images, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    res = CliRunner().invoke(cli, ["predict", "--model", str(tiny_model), str(bad), str(images[0]),
                                   "--json", "--no-overlay"])
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
            cv2.imwrite(str(root / split / "images" / f"{i}.png"), rng.integers(0, 255, (32, 40), np.uint8))
            m = np.zeros((32, 40), np.uint8)
            m[5:10, 5:12] = i % 3
            cv2.imwrite(str(root / split / "masks" / f"{i}.png"), m)
    (root / "classes.json").write_text(json.dumps({"classes": ["background", "scratch", "dent"]}))
    res = run("evaluate", "--model", tiny_model, "--data", root, "--split", "val", "--json")
    s = json.loads(res.output)
    assert set(s) >= {"miou", "mean_dice", "pixel_accuracy", "per_class", "image_recall",
                      "false_reject_rate", "images"}
    assert s["images"] == 3 and set(s["per_class"]) == {"background", "scratch", "dent"}
    assert set(s["per_class"]["dent"]) == {"dice", "iou", "precision", "recall"}
    assert 0 <= s["miou"] <= 1


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
