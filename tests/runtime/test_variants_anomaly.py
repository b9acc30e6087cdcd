"""Faster variants of a good-only (anomaly) model: training/variants.py gates them on the card's
check images (image and pixel AUROC, false rejects of good images, image decisions), keeps the
outputs in float, records the scores and the reasons on the card, and the runtime runs what
passed. The model is a tiny memory bank on fixed filters, trained on generated textures in
seconds; nothing real is trained."""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import pytest

from inspect_core.cards import CardError, sha256_file
from inspect_core.errors import DataError
from inspect_core.runtime import variant_export as vx
from inspect_core.runtime import variants
from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.runtime.variant_gate_anomaly import (
    MAX_AUROC_DROP,
    AnomalyCard,
    AnomalyScores,
    anomaly_float_levels,
    anomaly_gate,
    find_check_images,
)

ROOT = Path(__file__).resolve().parents[2]
VNNI = frozenset({"avx512_vnni"})


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A good-only model (filters, a 400-patch bank) on a generated texture dataset with
    groups g0-g3 (check: g3, 12 good and 4 blob images), and the dataset."""
    from inspect_core.anomaly.config import AnomalyConfig
    from inspect_core.training.anomaly.fit import train_anomaly

    kit = _load("anomaly_kit_for_variants", ROOT / "tests" / "anomaly" / "anomaly_kit.py")
    root = tmp_path_factory.mktemp("anomaly-variants")
    data = kit.make_dataset(root / "texture")
    cfg = AnomalyConfig(
        data=data, out=root / "run", features="filters", bank_size=400, pool_size=4000
    )
    train_anomaly(cfg, log=lambda s: None)
    return root / "run" / "model.onnx", data


@pytest.fixture
def model(trained, tmp_path) -> Path:
    """A fresh copy of the trained model and its card."""
    src, _ = trained
    dst = tmp_path / "good.onnx"
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


@pytest.fixture
def script(monkeypatch) -> ModuleType:
    """training/variants.py as a module on a CPU with VNNI (so the int8 copy is made)."""
    monkeypatch.syspath_prepend(str(ROOT / "training"))
    mod = _load("variants_script_anomaly", ROOT / "training" / "variants.py")
    monkeypatch.setattr(mod, "cpu_flags", lambda: VNNI)
    monkeypatch.setattr(variants, "cpu_flags", lambda: VNNI)
    monkeypatch.setattr(variants, "_LOGGED", set())
    monkeypatch.delenv(variants.VARIANT_ENV, raising=False)
    return mod


def _run(script, monkeypatch, model: Path, data: Path) -> None:
    argv = [str(model), "--data", str(data), "--runs", "1", "--calib", "4", "--images", "2"]
    monkeypatch.setattr(sys, "argv", ["variants.py", *argv, "--size", "64"])
    script.main()


def _fast_clock(script, monkeypatch, speedup: float = 2.0) -> None:
    """Every candidate made runs ``speedup`` times the fp32 file (the clock itself is the
    segmentation tests' business; here what matters is what the gate lets through)."""

    def fake_time(path, ref, cands, images, x, runs):
        for c in cands:
            if c.engine is not None and c.result is not None:
                c.ms, c.speedup, c.net_ms, c.net_speedup = 1.0, speedup, 1.0, speedup
        return {"ms": speedup, "net_ms": speedup}

    monkeypatch.setattr(script, "_time", fake_time)


def _entry(card: dict, name: str) -> dict:
    return next(e for e in card["variants"]["list"] if e["name"] == name)


def test_the_int8_copy_is_gated_on_the_check_images_and_runs_when_it_passes(
    model, trained, script, monkeypatch, capsys, caplog
):
    _fast_clock(script, monkeypatch)
    _run(script, monkeypatch, model, trained[1])
    card = json.loads(model.with_suffix(".json").read_text())
    v = card["variants"]
    check = card["scores"]["check"]
    # the fp32 file scored on the check images as training scored it
    assert v["reference"]["sha256"] == card["sha256"] == sha256_file(model)
    assert v["reference"]["image_auroc"] == pytest.approx(check["image_auroc"], abs=1e-5)
    assert v["reference"]["false_reject_rate"] == pytest.approx(check["false_reject_rate"])
    assert v["reference"]["images"] == 16 and v["reference"]["good_images"] == 12
    assert "miou" not in v["reference"]
    assert v["gate"]["images"] == 16 and "groups g3" in v["gate"]["what"]
    assert v["gate"]["max_image_auroc_drop"] == MAX_AUROC_DROP
    assert v["gate"]["min_decision_agreement"] == 0.99 and v["gate"]["max_extra_rejects"] == 1
    assert "bank images" in v["calibration"]["from"]
    int8 = _entry(card, "int8-onnxruntime")
    assert int8["passed"] and int8["shipped"], int8["why"]
    assert int8["why"].startswith("passed the gate: check image AUROC drop")
    assert int8["image_auroc"] >= check["image_auroc"] - MAX_AUROC_DROP
    assert int8["decision_agreement"] >= 0.99 and int8["extra_rejects"] <= 1
    assert "kept in float: the outputs" in int8["made"]
    # the levels with more in int8 (the distance to the bank) failed: each says why
    first = "int8-onnxruntime, minmax calibration; kept in float: the outputs ("
    assert int8["earlier"] and int8["earlier"][0].startswith(first)
    assert all("failed the gate" in e for e in int8["earlier"])
    assert int8["sha256"] == sha256_file(model.with_name("good.int8.onnx"))
    assert int8["why"] in capsys.readouterr().out
    # the runtime reads the card and runs the int8 copy, saying what the gate measured
    with caplog.at_level(logging.INFO, logger="inspect.models"):
        m = OnnxModel(model, threads=1)
    assert m.variant_name == "int8-onnxruntime"
    assert any("gate check image AUROC" in r.getMessage() for r in caplog.records)


def _damaging(monkeypatch) -> None:
    """Every int8 copy comes out with its threshold far down: every image is called
    anomalous, the ranking (so the AUROCs) unchanged."""
    real = vx.quantize_int8

    def quantize(prepared, dst, calib, keep, method):
        real(prepared, dst, calib, keep, method)
        proto = onnx.load(str(dst))
        (t,) = [i for i in proto.graph.initializer if i.name == "threshold"]
        t.CopyFrom(onnx.numpy_helper.from_array(np.array(-1e3, np.float32), "threshold"))
        onnx.save(proto, str(dst))

    monkeypatch.setattr(vx, "quantize_int8", quantize)


def test_a_copy_that_changes_decisions_fails_with_the_reason_on_the_card(
    model, trained, script, monkeypatch
):
    stale = model.with_name("good.int8.onnx")
    stale.write_bytes(b"an int8 file of an earlier run")
    _fast_clock(script, monkeypatch)
    _damaging(monkeypatch)
    _run(script, monkeypatch, model, trained[1])
    card = json.loads(model.with_suffix(".json").read_text())
    int8 = _entry(card, "int8-onnxruntime")
    assert not int8["passed"] and not int8["shipped"]
    assert int8["why"].startswith("failed the gate (false rejects, decisions)")
    assert int8["extra_rejects"] == 12 and int8["decision_agreement"] == pytest.approx(0.25)
    assert int8["good_rejected"] == 12 and int8["false_reject_rate"] == 1.0
    levels = anomaly_float_levels_of(model)
    assert len(int8["earlier"]) == len(levels) - 1  # every level was tried, each failed
    assert not stale.exists()  # no int8 copy ships: none is left beside the model
    assert OnnxModel(model, threads=1).variant_name == "fp32-onnxruntime"


def anomaly_float_levels_of(model: Path) -> list[tuple[str, list[str]]]:
    prepared = model.with_name("prepared.onnx")
    vx.prepare_for_quantization(model, prepared)
    return anomaly_float_levels(prepared)


def test_the_outputs_stay_float_and_the_distance_to_the_bank_goes_int8_first(model, trained):
    levels = anomaly_float_levels_of(model)
    labels = [label for label, _ in levels]
    assert labels[0] == "the outputs" and "the score head" in labels[-1]
    sets = [set(nodes) for _, nodes in levels]
    assert all(a < b for a, b in zip(sets, sets[1:]))  # each level keeps more in float
    graph = onnx.load(str(model.with_name("prepared.onnx"))).graph
    matmul = next(n.name for n in graph.node if n.op_type == "MatMul")
    assert matmul not in sets[0] and matmul in sets[-1]
    # quantized at the first level, both outputs still come straight from float nodes
    _, data = trained
    ds = find_check_images(_card(model), data).bank
    meta = OnnxModel(model, verify=False).meta
    calib = vx.calibration_inputs(ds, meta, 2)
    q = model.with_name("q.onnx")
    vx.quantize_int8(model.with_name("prepared.onnx"), q, calib, levels[0][1], "minmax")
    qgraph = onnx.load(str(q)).graph
    made_by = {o: n for n in qgraph.node for o in n.output}
    assert {made_by[o.name].op_type for o in qgraph.output}.isdisjoint({"DequantizeLinear"})
    assert any(n.op_type == "DequantizeLinear" for n in qgraph.node)  # the rest is int8


def _card(model: Path) -> AnomalyCard:
    path = model.with_suffix(".json")
    return AnomalyCard.read(json.loads(path.read_text()), path)


def test_the_check_images_are_the_cards_or_refused(model, trained):
    _, data = trained
    check = find_check_images(_card(model), data)
    assert len(check.check) == 16 and check.groups == ("g3",)
    assert not any("_g3_" in s.image.name for s in check.bank.samples)  # calibration: apart
    raw = json.loads(model.with_suffix(".json").read_text())
    raw["validation_split"]["check_images"] = 17  # the dataset changed since
    with pytest.raises(DataError, match=r"16 images, groups g3.*17 images, groups g3"):
        find_check_images(AnomalyCard.read(raw, model.with_suffix(".json")), data)
    del raw["validation_split"]
    with pytest.raises(CardError, match=r"good\.json.*retrain"):
        AnomalyCard.read(raw, model.with_suffix(".json"))


def scores(
    rejected: list[bool], good: list[bool], image: float | None = 0.9, pixel: float | None = 0.9
) -> AnomalyScores:
    bad = sum(r and g for r, g in zip(rejected, good))
    n = len(rejected)
    return AnomalyScores(image, pixel, 0.5, 0.5, n, n - sum(good), sum(good), bad, tuple(rejected))


GOOD = [True] * 80 + [False] * 20
REF = scores([False] * 78 + [True] * 2 + [True] * 20, GOOD)


@pytest.mark.parametrize(
    ("cand", "failed"),
    [
        (REF, ()),
        (scores(list(REF.rejected), GOOD, 0.895, 0.895), ()),  # each AUROC at the limit
        (scores(list(REF.rejected), GOOD, 0.8949), ("image AUROC",)),
        (scores(list(REF.rejected), GOOD, pixel=0.8949), ("pixel AUROC",)),
        (scores([False] * 77 + [True] * 3 + [True] * 20, GOOD), ()),  # one more reject, 99%
        (scores([False] * 76 + [True] * 4 + [True] * 20, GOOD), ("false rejects", "decisions")),
    ],
)
def test_the_gate_bounds_aurocs_false_rejects_and_decisions(cand, failed):
    r = anomaly_gate(REF, cand)
    assert r.failed == failed and r.passed is (not failed)
    verdict = f"failed the gate ({', '.join(failed)})" if failed else "passed the gate"
    assert r.why.startswith(verdict)


def test_decisions_that_move_without_more_rejects_fail_too():
    # the same two good images rejected, but two defective images no longer caught
    cand = scores([False] * 78 + [True] * 2 + [False] * 2 + [True] * 18, GOOD)
    r = anomaly_gate(REF, cand)
    assert r.failed == ("decisions",) and r.extra_rejects == 0
    assert r.agreement == pytest.approx(0.98) and "98.00% of 100" in r.why


def test_aurocs_without_a_defect_are_not_measured_and_do_not_fail():
    ref = scores([False] * 10, [True] * 10, None, None)
    r = anomaly_gate(ref, ref)
    assert r.passed and r.image_auroc_drop is None
    assert "image AUROC drop not measured" in r.why


def test_scores_from_maps_call_an_image_anomalous_only_above_the_threshold():
    masks = [np.zeros((4, 4), np.uint8) for _ in range(3)] + [np.eye(4, dtype=np.uint8)]
    masks[2][0, 0] = 255  # ignored: still a good image
    maps = [np.full((4, 4), -1.0, np.float32) for _ in range(4)]
    maps[0][1, 1] = 0.0  # at the threshold: background (argmax takes the first on a tie)
    maps[1][2, 2] = 0.5  # above: rejected
    maps[3] += 3 * np.eye(4, dtype=np.float32)  # the defect scores high
    s = AnomalyScores.from_maps(maps, masks, 255)
    assert s.rejected == (False, True, False, True)
    assert s.good_images == 3 and s.good_rejected == 1 and s.defective_images == 1
    assert s.false_reject_rate == pytest.approx(1 / 3)
    assert s.image_auroc == 1.0
