"""training/variants.py: gate, time and record a model's faster variants in its card."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CLASSES, make_tiny_model, write_card
from script_kit import load_script
from seg_kit import write_dataset

from inspect_core.cards import sha256_file
from inspect_core.runtime import variant_export as vx
from inspect_core.runtime import variants
from inspect_core.runtime.onnx_model import OnnxModel

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny model with its card (naming its dataset, as training writes it) and a dataset
    under DATASETS/<name> with train and val splits."""
    tmp = tmp_path_factory.mktemp("variants")
    write_dataset(tmp / "datasets" / "squares", {"train": 6, "val": 3}, classes=CLASSES)
    (tmp / "models").mkdir()
    model = make_tiny_model(tmp / "models" / "tiny.onnx")
    card = write_card(model)
    card.write_text(json.dumps({**json.loads(card.read_text()), "dataset": {"name": "squares"}}))
    return model


def test_the_script_records_every_candidate_and_ships_only_what_passed(trained, tmp_path):
    model = tmp_path / "tiny.onnx"
    shutil.copy(trained, model)
    shutil.copy(trained.with_suffix(".json"), model.with_suffix(".json"))
    datasets = trained.parents[1] / "datasets"
    cmd = [sys.executable, "training/variants.py", str(model), "--datasets", str(datasets)]
    out = subprocess.run(
        [*cmd, "--runs", "1", "--calib", "4", "--size", "64", "--images", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    card = json.loads(model.with_suffix(".json").read_text())
    v = card["variants"]
    assert v["reference"]["sha256"] == card["sha256"] == sha256_file(model)
    assert v["gate"]["images"] == 3 and v["calibration"]["images"] == 4
    listed = {e["name"]: e for e in v["list"]}
    assert set(listed) == {s.name for s in vx.CANDIDATES}
    for e in listed.values():
        assert e["shipped"] == (e["passed"] and e["speedup"] >= vx.MIN_SPEEDUP), e
        assert e["why"] in out.stdout
    int8 = model.with_name("tiny.int8.onnx")
    int8_ships = any(e["shipped"] for e in listed.values() if e["precision"] == "int8")
    assert int8.exists() == int8_ships
    if int8_ships:
        assert listed["int8-onnxruntime"]["sha256"] == sha256_file(int8)
    # the runtime runs what the card ships, or fp32 where this machine cannot
    expected = variants.plan(model, model.with_suffix(".json"), sha256_file(model)).expected
    assert OnnxModel(model, threads=1).variant_name == expected


def _script(monkeypatch):
    return load_script("variants", monkeypatch)


def test_an_int8_copy_that_fails_is_made_again_with_more_layers_in_float(
    trained, tmp_path, monkeypatch
):
    script = _script(monkeypatch)
    model = tmp_path / "tiny.onnx"
    shutil.copy(trained, model)
    state: dict = {}
    real_gate, real_quantize = vx.gate, vx.quantize_int8

    def quantize(prepared, dst, calib, keep, method):
        state["levels"], state["keep"] = vx.float_levels(prepared), keep
        real_quantize(prepared, dst, calib, keep, method)

    def gate(ref, cand):  # only the int8 copy with the most layers kept in float passes
        r = real_gate(ref, cand)
        last = state["keep"] == state["levels"][-1][1]
        return vx.GateResult(r.miou_drop, r.worst_class, r.worst_class_drop, last)

    monkeypatch.setattr(vx, "gate", gate)
    monkeypatch.setattr(vx, "quantize_int8", quantize)
    monkeypatch.setattr(script, "cpu_flags", lambda: frozenset({"avx512_vnni"}))
    ds = script.open_dataset(str(trained.parents[1] / "datasets" / "squares"), "val")
    meta = OnnxModel(model, verify=False).meta
    calib = vx.calibration_inputs(script.open_dataset(ds.root, "train"), meta, 2)
    ref = vx.Scores.of(OnnxModel(model, verify=False), ds)

    class Args:
        method, threads = "minmax", 1

    q, cands = script._int8(model, tmp_path, calib, ds, ref, Args)
    made = [c for c in cands if c.result is not None]
    assert q is not None and made and all(c.result.passed for c in made)
    assert all("decoder" in c.note for c in made)  # the last level: the decoder kept in float


def test_a_run_stopped_before_its_card_leaves_the_old_int8_file_and_card(
    trained, tmp_path, monkeypatch
):
    """The int8 file is renamed into place only after the card naming its sha256: stopped
    during the minutes of gating and timing, the shipped pair stays as it was."""
    script = _script(monkeypatch)
    model = tmp_path / "tiny.onnx"
    shutil.copy(trained, model)
    shutil.copy(trained.with_suffix(".json"), model.with_suffix(".json"))
    old_int8, old_card = b"the int8 file the card names", model.with_suffix(".json").read_bytes()
    model.with_name("tiny.int8.onnx").write_bytes(old_int8)
    monkeypatch.setattr(script, "cpu_flags", lambda: frozenset({"avx512_vnni"}))
    monkeypatch.setattr(vx, "gate", lambda ref, cand: vx.GateResult(0.0, "", 0.0, True))

    def stopped(*a, **k):
        raise KeyboardInterrupt  # Ctrl-C while the card is being put together

    monkeypatch.setattr(script, "_record", stopped)
    datasets = trained.parents[1] / "datasets"
    argv = [str(model), "--datasets", str(datasets), "--runs", "1", "--calib", "2"]
    monkeypatch.setattr(sys, "argv", ["variants.py", *argv, "--size", "64", "--images", "1"])
    with pytest.raises(KeyboardInterrupt):
        script.main()
    assert model.with_name("tiny.int8.onnx").read_bytes() == old_int8
    assert model.with_suffix(".json").read_bytes() == old_card
    assert not list(tmp_path.glob("*.tmp"))  # the staged int8 copy does not stay behind
