"""The runtime's choice of a model's faster variant: the fastest shipped one this machine runs,
its file checked against the card, fp32 otherwise, with a log line saying why."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inspect_core import cards
from inspect_core.cards import ALLOW_UNVERIFIED_ENV, sha256_file
from inspect_core.errors import ModelError
from inspect_core.runtime import engines, variants
from inspect_core.runtime import variant_export as vx
from inspect_core.runtime.model_file import edit_meta
from inspect_core.runtime.onnx_model import OnnxModel

VNNI = frozenset({"avx512_vnni"})
BOTH = frozenset({"avx512_vnni", "avx512_bf16"})
HAS_OPENVINO = engines.engine_installed("openvino")


def _image(h=96, w=120, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.normal(120, 40, (h, w)).clip(0, 255).astype(np.uint8)
    img[h // 4 : h // 2, w // 3 : w // 2] = 230
    return img


@pytest.fixture(scope="module")
def int8_file(tiny_model, tmp_path_factory) -> Path:
    """The tiny model quantized as training/variants.py does (calibrated on noise)."""
    tmp = tmp_path_factory.mktemp("int8")
    prepared = tmp / "prepared.onnx"
    vx.prepare_for_quantization(tiny_model, prepared)
    rng = np.random.default_rng(0)
    calib = [rng.normal(size=(1, 1, 64, 80)).astype(np.float32) for _ in range(4)]
    out = tmp / "tiny.int8.onnx"
    vx.quantize_int8(prepared, out, calib, [], "minmax")
    return out


def entry(name: str, speedup: float, shipped: bool = True, sha: str = "") -> dict:
    precision, engine = name.split("-")
    suffix = ".int8.onnx" if precision == "int8" else ".onnx"
    return {
        "name": name,
        "engine": engine,
        "precision": precision,
        "suffix": suffix,
        "sha256": sha,
        "speedup": speedup,
        "miou": 0.5,
        "passed": shipped,
        "shipped": shipped,
    }


@pytest.fixture
def model(tiny_model, int8_file, tmp_path, monkeypatch) -> Path:
    """A copy of the tiny model with its int8 file and a card listing int8-onnxruntime (2x)
    and bf16-openvino (3x); the CPU has VNNI and no bf16 unless a test says otherwise."""
    monkeypatch.setattr(variants, "cpu_flags", lambda: VNNI)
    monkeypatch.setattr(variants, "_LOGGED", set())
    monkeypatch.delenv(variants.VARIANT_ENV, raising=False)
    path = tmp_path / "m.onnx"
    shutil.copy(tiny_model, path)
    shutil.copy(int8_file, tmp_path / "m.int8.onnx")
    sha = sha256_file(path)
    write_variants(
        path,
        [
            entry("int8-onnxruntime", 2.0, sha=sha256_file(int8_file)),
            entry("bf16-openvino", 3.0, sha=sha),
        ],
    )
    return path


def write_variants(path: Path, entries: list[dict], reference: str | None = None) -> None:
    card = {
        "classes": ["background", "scratch", "dent"],
        "sha256": sha256_file(path),
        "variants": {"reference": {"sha256": reference or sha256_file(path)}, "list": entries},
    }
    path.with_suffix(".json").write_text(json.dumps(card))


def fp32_logits(path: Path, x: np.ndarray) -> np.ndarray:
    return OnnxModel(path, threads=1, variant="fp32").logits(x)


def test_the_fastest_shipped_variant_the_cpu_runs_is_the_one_that_runs(model, caplog, monkeypatch):
    # openvino counts as installed, so the skip names the CPU whether or not it is
    monkeypatch.setattr(variants, "engine_installed", lambda engine: True)
    x = OnnxModel(model, variant="fp32").prepare(_image())[None]
    with caplog.at_level(logging.INFO, logger="inspect.models"):
        m = OnnxModel(model, threads=1)
    assert m.variant_name == "int8-onnxruntime"  # bf16 is faster, but this CPU has no bf16
    assert m.session is not None and m.session._model_path.endswith("m.int8.onnx")
    (rec,) = [r for r in caplog.records if getattr(r, "event", "") == "model_variant"]
    assert rec.levelno == logging.INFO and "int8-onnxruntime" in rec.getMessage()
    assert "bf16-openvino skipped: the CPU has none of avx512_bf16" in rec.getMessage()
    got, ref = m.logits(x), fp32_logits(model, x)
    assert not np.array_equal(got, ref)  # really the int8 network ...
    assert (got.argmax(1) == ref.argmax(1)).mean() > 0.9  # ... computing the same thing
    assert m.meta == OnnxModel(model, variant="fp32").meta  # tiles, copies, prior: as shipped


def test_inspect_variant_fp32_forces_the_fp32_file(model, monkeypatch):
    x = OnnxModel(model, variant="fp32").prepare(_image())[None]
    monkeypatch.setenv(variants.VARIANT_ENV, "fp32")
    m = OnnxModel(model, threads=1)
    assert m.variant_name == "fp32-onnxruntime"
    assert m.session._model_path.endswith("m.onnx")
    np.testing.assert_array_equal(m.logits(x), fp32_logits(model, x))


def test_a_variant_that_did_not_ship_never_runs(model, int8_file):
    write_variants(model, [entry("int8-onnxruntime", 5.0, shipped=False)])
    assert OnnxModel(model, threads=1).variant_name == "fp32-onnxruntime"
    p = variants.plan(model, model.with_suffix(".json"), sha256_file(model), "auto", VNNI)
    assert p.expected == "fp32-onnxruntime" and p.skipped == ()


def test_a_variant_file_that_does_not_match_its_card_is_refused(model, monkeypatch, caplog):
    int8 = model.with_name("m.int8.onnx")
    shutil.copy(model, int8)  # another network under the variant's name
    with pytest.raises(ModelError) as e:
        OnnxModel(model, threads=1)
    msg = str(e.value)
    assert str(int8) in msg and sha256_file(int8) in msg and "INSPECT_VARIANT=fp32" in msg
    monkeypatch.setenv(variants.VARIANT_ENV, "fp32")  # the operator's way out
    assert OnnxModel(model, threads=1).variant_name == "fp32-onnxruntime"
    monkeypatch.delenv(variants.VARIANT_ENV)
    monkeypatch.setenv(ALLOW_UNVERIFIED_ENV, "1")
    monkeypatch.setattr(cards, "_LOGGED", set())
    with caplog.at_level(logging.WARNING, logger="inspect.models"):
        assert OnnxModel(model, threads=1).variant_name == "int8-onnxruntime"
    assert any(str(int8) in r.getMessage() for r in caplog.records)


def test_a_missing_variant_file_falls_back_to_fp32_with_a_warning(model, caplog):
    model.with_name("m.int8.onnx").unlink()
    with caplog.at_level(logging.INFO, logger="inspect.models"):
        m = OnnxModel(model, threads=1)
    assert m.variant_name == "fp32-onnxruntime"
    (rec,) = [r for r in caplog.records if getattr(r, "event", "") == "model_variant"]
    assert rec.levelno == logging.WARNING
    assert "its file m.int8.onnx is missing" in rec.getMessage()


def test_a_cpu_without_the_instructions_runs_fp32_and_says_so_without_a_warning(
    model, monkeypatch, caplog
):
    monkeypatch.setattr(variants, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    with caplog.at_level(logging.INFO, logger="inspect.models"):
        assert OnnxModel(model, threads=1).variant_name == "fp32-onnxruntime"
    (rec,) = [r for r in caplog.records if getattr(r, "event", "") == "model_variant"]
    assert rec.levelno == logging.INFO  # nothing to fix: this CPU just has no VNNI or bf16
    assert "int8-onnxruntime skipped: the CPU has none of avx512_vnni" in rec.getMessage()
    caplog.clear()
    monkeypatch.setattr(variants, "_LOGGED", set())
    monkeypatch.setenv(variants.VARIANT_ENV, "int8-onnxruntime")  # asked for, and not run
    with caplog.at_level(logging.INFO, logger="inspect.models"):
        assert OnnxModel(model, threads=1).variant_name == "fp32-onnxruntime"
    (rec,) = [r for r in caplog.records if getattr(r, "event", "") == "model_variant"]
    assert rec.levelno == logging.WARNING


def test_variants_of_an_older_model_file_are_not_run(model):
    edit_meta(model, lambda meta: meta.update(class_bias=[0.0, -1.0, -1.0]))  # fit_prior did
    card = json.loads(model.with_suffix(".json").read_text())
    card["sha256"] = sha256_file(model)  # ... and wrote the new sha256 into the card
    model.with_suffix(".json").write_text(json.dumps(card))
    p = variants.plan(model, model.with_suffix(".json"), sha256_file(model), "auto", VNNI)
    assert p.candidates == ()
    assert all("rerun training/variants.py" in s.why for s in p.skipped)
    m = OnnxModel(model, threads=1)
    assert m.variant_name == "fp32-onnxruntime" and m.meta.class_bias == (0.0, -1.0, -1.0)


def test_a_variant_whose_engine_is_not_installed_is_skipped(model, monkeypatch):
    monkeypatch.setattr(variants, "cpu_flags", lambda: BOTH)
    real = engines.engine_installed
    monkeypatch.setattr(variants, "engine_installed", lambda e: e != "openvino" and real(e))
    p = variants.plan(model, model.with_suffix(".json"), sha256_file(model))
    assert [v.name for v in p.candidates] == ["int8-onnxruntime"]
    assert p.to_dict() == {
        "variant": "int8-onnxruntime",
        "requested": "auto",
        "skipped": {"bf16-openvino": "openvino is not installed (pip install openvino)"},
    }
    assert OnnxModel(model, threads=1).variant_name == "int8-onnxruntime"


def test_asking_for_a_variant_the_card_does_not_ship_runs_fp32(model, monkeypatch, caplog):
    monkeypatch.setenv(variants.VARIANT_ENV, "int4-onnxruntime")
    with caplog.at_level(logging.WARNING, logger="inspect.models"):
        assert OnnxModel(model, threads=1).variant_name == "fp32-onnxruntime"
    (rec,) = [r for r in caplog.records if getattr(r, "event", "") == "model_variant"]
    assert "names no shipped variant (shipped: bf16-openvino, int8-onnxruntime)" in rec.getMessage()


@pytest.mark.parametrize(
    "bad",
    [
        {"list": [dict(entry("int8-onnxruntime", 2.0), shipped="yes")]},
        {"list": [dict(entry("int8-onnxruntime", 2.0), suffix="../../x.onnx")]},
        {"list": "int8"},
    ],
)
def test_a_damaged_variants_entry_refuses_the_model_naming_the_card(model, bad):
    card = json.loads(model.with_suffix(".json").read_text())
    card["variants"] = {"reference": {"sha256": card["sha256"]}, **bad}
    model.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"m\.json \(variants\)"):
        OnnxModel(model, threads=1)


def test_a_model_without_a_card_or_unverified_runs_fp32(model, tmp_path):
    bare = tmp_path / "bare.onnx"
    shutil.copy(model, bare)
    shutil.copy(model.with_name("m.int8.onnx"), tmp_path / "bare.int8.onnx")
    assert OnnxModel(bare, threads=1).variant_name == "fp32-onnxruntime"
    assert OnnxModel(model, threads=1, verify=False).variant_name == "fp32-onnxruntime"


@pytest.mark.skipif(not HAS_OPENVINO, reason="openvino is not installed")
def test_openvino_bf16_runs_the_fp32_file_with_its_metadata(model, monkeypatch):
    monkeypatch.setattr(variants, "cpu_flags", lambda: BOTH)
    img = _image()
    m = OnnxModel(model, threads=1)
    assert m.variant_name == "bf16-openvino" and m.session is None
    ref = OnnxModel(model, threads=1, variant="fp32")
    assert m.meta == ref.meta
    a, b = m.probabilities(img), ref.probabilities(img)
    assert a.shape == b.shape and np.abs(a - b).max() < 0.05
    x = ref.prepare(img)[None]
    first = m.logits(x)
    m.logits(x + 1)  # a second run must not overwrite what the first returned
    np.testing.assert_array_equal(first, m.logits(x))


def test_only_onnxruntime_is_imported_when_no_openvino_variant_runs(model):
    code = (
        "import sys; from inspect_core.runtime.onnx_model import OnnxModel; "
        f"m = OnnxModel({str(model)!r}, threads=1, variant='int8-onnxruntime'); "
        "assert m.variant_name in ('int8-onnxruntime', 'fp32-onnxruntime'), m.variant_name; "
        "assert 'openvino' not in sys.modules; assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


@pytest.mark.skipif(not HAS_OPENVINO, reason="openvino is not installed")
def test_an_openvino_variant_may_be_called_from_several_threads_at_once(model, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv(variants.VARIANT_ENV, "bf16-openvino")
    monkeypatch.setattr(variants, "cpu_flags", lambda: BOTH)
    m = OnnxModel(model, threads=1)  # as a station's model workers share it
    assert m.variant_name == "bf16-openvino"
    xs = [m.prepare(_image(seed=i))[None] for i in range(8)]
    alone = [m.logits(x) for x in xs]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(m.logits, xs * 3))
    for i, got in enumerate(together):
        np.testing.assert_array_equal(got, alone[i % 8])
