"""Making variants at export: the accuracy gate, layers kept in float, calibration images."""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import pytest

from inspect_core.data.datasets import open_dataset
from inspect_core.runtime import variant_export as vx
from inspect_core.runtime.onnx_model import ModelMeta, normalize

REF = vx.Scores(0.80, {"background": 0.98, "inclusion": 0.70, "patches": 0.72}, 10)


def scores(miou, **iou):
    return vx.Scores(miou, {**REF.iou, **iou}, 10)


@pytest.mark.parametrize(
    ("cand", "passed", "worst"),
    [
        (scores(0.795, inclusion=0.69), True, "inclusion"),  # 0.005 and 0.01 lower: the limits hold
        (scores(0.7949, inclusion=0.69), False, "inclusion"),  # mIoU just past 0.005
        (scores(0.80, patches=0.699, inclusion=0.72), False, "patches"),  # mIoU kept, a class lost
        (scores(0.81, patches=0.75), True, "background"),  # better is fine
    ],
)
def test_the_gate_bounds_the_miou_drop_and_every_class_drop(cand, passed, worst):
    r = vx.gate(REF, cand)
    assert r.passed is passed and r.worst_class == worst
    assert r.miou_drop == pytest.approx(REF.miou - cand.miou)
    assert ("passed" if passed else "failed") in r.why and worst in r.why


def test_a_candidate_ships_only_when_it_passed_and_is_faster():
    ok = vx.gate(REF, REF)
    bad = vx.gate(REF, scores(0.7))
    spec = vx.CANDIDATES[0]
    assert vx.Candidate(spec, ".int8.onnx", REF, ok, speedup=2.0).shipped
    assert not vx.Candidate(spec, ".int8.onnx", REF, ok, speedup=1.05).shipped
    slow = vx.Candidate(spec, ".int8.onnx", REF, bad, speedup=3.0)
    assert not slow.shipped and not slow.to_dict()["shipped"]
    assert slow.to_dict()["why"].startswith("failed the gate")
    unmade = vx.Candidate(spec, ".int8.onnx", note="openvino is not installed here")
    assert unmade.to_dict()["why"] == "not made: openvino is not installed here"


def test_float_levels_grow_and_the_kept_nodes_stay_float(tiny_model, tmp_path):
    prepared = tmp_path / "prepared.onnx"
    vx.prepare_for_quantization(tiny_model, prepared)
    levels = vx.float_levels(prepared)
    assert levels[0] == ("none", [])
    sets = [set(nodes) for _, nodes in levels]
    assert all(a < b for a, b in zip(sets, sets[1:]))  # each level keeps more in float
    nodes = list(onnx.load(str(prepared)).graph.node)
    convs = [n.name for n in nodes if n.op_type == "Conv"]
    assert {convs[0], convs[-1]} == sets[1]
    calib = [np.random.default_rng(0).normal(size=(1, 1, 48, 48)).astype(np.float32)]
    for keep, name in (([], "all"), (levels[1][1], "ends")):
        out = tmp_path / f"{name}.onnx"
        vx.quantize_int8(prepared, out, calib, keep, "minmax")
        graph = onnx.load(str(out)).graph
        float_inits = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
        by_name = {n.name: n for n in graph.node}
        # a Conv left in float reads its weights straight from a float initializer
        head_float = by_name[convs[-1]].input[1] in float_inits
        assert head_float is (name == "ends")
        assert sum(n.op_type == "DequantizeLinear" for n in graph.node) > 0


def _dataset(root, n=5, side=48):
    """``n`` training images of distinct noise (and empty masks)."""
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "masks").mkdir(parents=True)
    (root / "classes.json").write_text(json.dumps({"classes": ["background", "square"]}))
    for i in range(n):
        img = np.random.default_rng(i).integers(0, 256, (side, side), dtype=np.uint8)
        cv2.imwrite(str(root / "train" / "images" / f"{i:02d}.png"), img)
        cv2.imwrite(str(root / "train" / "masks" / f"{i:02d}.png"), np.zeros_like(img))
    return open_dataset(root, "train")


def _crop_of(x, img, meta):
    """Whether the normalised crop ``x`` (1, 1, t, t) is a window of ``img``."""
    full = normalize(img, meta.mean, meta.std)[0]
    t = x.shape[-1]
    return any(
        np.array_equal(full[y : y + t, c : c + t], x[0, 0])
        for y in range(full.shape[0] - t + 1)
        for c in range(full.shape[1] - t + 1)
    )


def test_calibration_uses_training_images_outside_the_gate_cropped_to_the_tile(tmp_path):
    train = _dataset(tmp_path / "d")
    meta = ModelMeta(["background", "square"], 0.5, 0.25, 1, 32, tile_size=32)
    held = ["train/images/00.png", "train/images/01.png", "train/images/02.png"]
    xs = vx.calibration_inputs(train, meta, 10, exclude=held)
    assert len(xs) == 2 and all(x.shape == (1, 1, 32, 32) for x in xs)
    images = [train.load(i)[0] for i in range(5)]
    for x in xs:  # every crop comes from image 03 or 04, none from the gate's
        assert [i for i, img in enumerate(images) if _crop_of(x, img, meta)] in ([3], [4])
    everything = [f"train/images/{i:02d}.png" for i in range(5)]
    assert vx.calibration_inputs(train, meta, 10, exclude=everything) == []
