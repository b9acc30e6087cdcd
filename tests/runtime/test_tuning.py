"""Choosing the variant by measuring it on this machine (issue 26): the gate sample shipped
beside a model, the measurement of each variant against the fp32 file on it (scores, pixel
agreement, time), kept per model and machine, and the plan it gives: the fastest variant that
passed here, whatever the CPU flags; a variant that failed here is left out with a warning."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from inspect_core.cards import sha256_file
from inspect_core.errors import ModelError
from inspect_core.runtime import gate_sample as gs
from inspect_core.runtime import loader, tuning, variants
from inspect_core.runtime import variant_export as vx
from inspect_core.runtime.engines import EngineSpec, OrtEngine
from inspect_core.runtime.machine import Machine, this_machine
from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.runtime.tuning_run import load_measured, tune

NO_VNNI = frozenset({"avx2"})


def line(seed: int, h: int = 64, w: int = 80) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    img = rng.normal(120, 30, (h, w)).clip(0, 255).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    img[10:30, 20:50] = 230
    mask[10:30, 20:50] = 1
    return img, mask


def sample(n: int = 4) -> gs.GateSample:
    pairs = [line(i) for i in range(n)]
    return gs.GateSample(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), 255, "test")


@pytest.fixture
def model(tiny_model, tmp_path, monkeypatch):
    """The tiny model with its int8 file, a card shipping it and a gate sample; a CPU without
    VNNI (the flags alone would run fp32); measuring on; a cache of the test's own."""
    monkeypatch.setattr(variants, "cpu_flags", lambda: NO_VNNI)
    monkeypatch.setattr(variants, "_LOGGED", set())
    monkeypatch.delenv(variants.VARIANT_ENV, raising=False)
    monkeypatch.setenv(tuning.TUNE_ENV, "on")
    monkeypatch.setenv(tuning.CACHE_ENV, str(tmp_path / "cache"))
    path = tmp_path / "m.onnx"
    shutil.copy(tiny_model, path)
    vx.prepare_for_quantization(path, tmp_path / "prepared.onnx")
    rng = np.random.default_rng(0)
    calib = [rng.normal(size=(1, 1, 64, 80)).astype(np.float32) for _ in range(4)]
    vx.quantize_int8(tmp_path / "prepared.onnx", tmp_path / "m.int8.onnx", calib, [], "minmax")
    sample_file = gs.save(sample(), gs.gate_sample_path(path))
    entry = {"name": "int8-onnxruntime", "engine": "onnxruntime", "precision": "int8"}
    entry |= {"suffix": ".int8.onnx", "sha256": sha256_file(tmp_path / "m.int8.onnx")}
    entry |= {"speedup": 2.0, "miou": 0.5, "passed": True, "shipped": True}
    card = {
        "classes": ["background", "scratch", "dent"],
        "sha256": sha256_file(path),
        "variants": {
            "reference": {"sha256": sha256_file(path)},
            "list": [entry],
            "gate": {"max_miou_drop": 0.005, "max_class_drop": 0.02},
            "gate_sample": {"file": sample_file.name, "sha256": sha256_file(sample_file)},
        },
    }
    path.with_suffix(".json").write_text(json.dumps(card))
    return path


def measured(name: str, speedup: float, passed: bool = True) -> tuning.Measured:
    why = "passed" if passed else "labels 61.00% of pixels as fp32 does (at least 99%)"
    return tuning.Measured(name, 10.0, speedup, 0.5, 0.0, "dent", 0.0, 0.999, passed, why)


def a_tuning(model, *entries: tuning.Measured) -> tuning.Tuning:
    m = this_machine(1)
    return tuning.Tuning(sha256_file(model), m, 4, 20.0, 0.5, None, entries, "now")


def test_the_gate_sample_keeps_its_images_exactly_and_refuses_a_changed_file(tmp_path):
    s = sample(3)
    path = gs.save(s, tmp_path / "x.gate.npz")
    back = gs.load(path, sha256_file(path))
    assert all(np.array_equal(a, b) for a, b in zip(back.images, s.images))
    assert all(np.array_equal(a, b) for a, b in zip(back.masks, s.masks))
    with pytest.raises(ModelError, match="x.gate.npz: does not match the sha256"):
        gs.load(path, "0" * 64)
    img, mask = line(0, 400, 500)
    cut_img, cut_mask = gs.crop(img, mask, 255, 100)
    assert cut_img.shape == (100, 100) and cut_mask.sum() == mask.sum()  # the defect kept


def test_a_variant_measured_as_passing_here_runs_though_the_cpu_lacks_vnni(model, caplog):
    with caplog.at_level(logging.INFO, logger="inspect.models"):
        m = load_measured(model, threads=1)
    kept = tuning.cached(sha256_file(model), this_machine(1))
    assert kept is not None and [v.name for v in kept.variants] == ["int8-onnxruntime"]
    int8 = kept.entry("int8-onnxruntime")
    assert int8.agreement > 0.99 and int8.passed and int8.ms > 0 and kept.images == 4
    expected = kept.fastest  # int8 when it was faster here, else the fp32 file
    assert m.variant_name == expected
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "variants measured on this machine" in said
    if expected == "int8-onnxruntime":
        assert "measured on this machine" in said and "the CPU has none of" not in said


def test_the_measurement_is_kept_and_not_made_again(model, monkeypatch):
    from inspect_core.runtime import tuning_run

    first = load_measured(model, threads=1)
    monkeypatch.setattr(tuning_run, "tune", lambda *a, **k: pytest.fail("measured again"))
    again = load_measured(model, threads=1)  # the kept one
    plain = OnnxModel(model, threads=1)  # any model load plans from it
    assert first.variant_name == again.variant_name == plain.variant_name
    assert plain.loaded.plan is not None and plain.loaded.plan.measured is not None
    other = this_machine(1)
    other = Machine("another CPU", other.flags, other.cores, 1, other.libraries)
    assert tuning.cached(sha256_file(model), other) is None  # another machine: not its


def test_a_variant_that_fails_its_gate_here_is_left_out_with_a_warning(model, caplog):
    t = a_tuning(model, measured("int8-onnxruntime", 3.0, passed=False))
    card = loader.verify_model_card(model, model.with_suffix(".json"))[1]
    plan = variants.plan_card(model, card, sha256_file(model), measured=t)
    assert plan.candidates == ()
    (skip,) = plan.skipped
    assert skip.why.startswith("failed its gate on this CPU: labels 61.00% of pixels")
    with caplog.at_level(logging.INFO, logger="inspect.models"):
        chosen = variants.open_planned(model, model.with_suffix(".json"), plan, 1)
    assert chosen.name == "fp32-onnxruntime"
    (rec,) = [r for r in caplog.records if getattr(r, "event", "") == "model_variant"]
    assert rec.levelno == logging.WARNING and "failed its gate on this CPU" in rec.getMessage()


def test_variants_are_ranked_by_the_speed_measured_here_not_the_cards(model):
    card = loader.verify_model_card(model, model.with_suffix(".json"))[1]
    slow = a_tuning(model, measured("int8-onnxruntime", 0.8))
    plan = variants.plan_card(model, card, sha256_file(model), measured=slow)
    assert plan.candidates == () and "not faster on this CPU (0.80x" in plan.skipped[0].why
    fast = a_tuning(model, measured("int8-onnxruntime", 1.6))
    plan = variants.plan_card(model, card, sha256_file(model), measured=fast)
    assert [v.name for v in plan.candidates] == ["int8-onnxruntime"]
    assert (
        variants.plan_card(model, card, sha256_file(model), "fp32", measured=fast).candidates == ()
    )


def test_a_variant_computing_something_else_fails_the_measurement(model):
    """An engine whose int8 arithmetic went wrong (here: the class channels reversed) fails on
    agreement and mIoU, not on the card's word."""

    class Saturated(OrtEngine):
        def run(self, batch):
            out = super().run(batch)
            return np.ascontiguousarray(out[:, ::-1])

    broken = Saturated(model.with_name("m.int8.onnx"), 1, None, "int8")
    t = tune(model, {"int8-onnxruntime": broken}, sample(), "x", this_machine(1))
    (m,) = t.variants
    assert not m.passed and "labels" in m.why and m.agreement < 0.99
    assert t.fastest == "fp32-onnxruntime"


def test_without_measuring_or_without_a_gate_sample_the_cpu_flags_decide(model, monkeypatch):
    monkeypatch.setenv(tuning.TUNE_ENV, "off")
    assert load_measured(model, threads=1).variant_name == "fp32-onnxruntime"  # no VNNI
    monkeypatch.setenv(tuning.TUNE_ENV, "on")
    gs.gate_sample_path(model).unlink()
    with pytest.raises(ModelError, match="m.gate.npz: the model card names this gate sample"):
        load_measured(model, threads=1)


def test_a_kept_measurement_that_is_unreadable_is_made_again(model):
    load_measured(model, threads=1)
    path = tuning.cache_file(sha256_file(model), this_machine(1))
    path.write_text("{not json")
    assert tuning.cached(sha256_file(model), this_machine(1)) is None
    load_measured(model, threads=1)
    assert tuning.cached(sha256_file(model), this_machine(1)) is not None


def test_the_machine_key_changes_with_what_changes_the_kernels():
    m = this_machine(1)
    assert m.key == this_machine(1).key and m.key != this_machine(2).key
    assert Machine.from_dict(m.to_dict()) == m
    fewer = Machine(m.cpu, ("avx2",), m.cores, 1, m.libraries)
    assert fewer.key != Machine(m.cpu, ("avx2", "avx512_vnni"), m.cores, 1, m.libraries).key
    assert EngineSpec().name == "fp32-onnxruntime"


def test_tune_measures_again_and_prints_the_table(model):
    from click.testing import CliRunner

    from inspect_core.commands.tune import tune_cmd

    res = CliRunner().invoke(tune_cmd, [str(model), "--threads", "1"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"{model} on ") and "thread" in lines[0]
    assert lines[2].split()[:3] == ["variant", "ms", "speed-up"]
    assert lines[3].startswith("int8-onnxruntime") and lines[3].rstrip().endswith("passed")
    kept = tuning.cached(sha256_file(model), this_machine(1))
    assert lines[-1] == f"runs: {kept.fastest}"
    res = CliRunner().invoke(tune_cmd, [str(model), "--threads", "1", "--json"])
    d = json.loads(res.stdout)
    assert d["variants"][0]["name"] == "int8-onnxruntime" and d["runs"] == kept.fastest
    assert d["machine"]["cpu"] == this_machine(1).cpu


def test_tune_without_a_gate_sample_says_how_to_make_one(model):
    from click.testing import CliRunner

    from inspect_core.commands.tune import tune_cmd

    card = json.loads(model.with_suffix(".json").read_text())
    del card["variants"]["gate_sample"]
    model.with_suffix(".json").write_text(json.dumps(card))
    res = CliRunner().invoke(tune_cmd, [str(model)])
    assert isinstance(res.exception, ModelError)
    assert "ships no gate sample" in str(res.exception) and "gate_sample.py" in str(res.exception)
    res = CliRunner().invoke(tune_cmd, [str(model), "--plugin", "industrial:steel"])
    assert res.exit_code == 2 and "not both" in res.output


def test_inspect_plugins_says_what_would_run_here_and_whether_it_was_measured(model):
    from inspect_core.commands.plugins import _variant
    from inspect_core.runtime.recipe import Recipe

    recipe = Recipe(name="r", model=model)
    sha = sha256_file(model)
    before = _variant(recipe, sha)
    assert before["measured"] is False and before["variant"] == "fp32-onnxruntime"  # no VNNI
    ran = load_measured(model, threads=1).variant_name
    after = _variant(recipe, sha)
    assert after["measured"] is True and after["variant"] == ran
