"""Dead weights (|w| < 1e-30, left by weight decay) are zeroed: at init, during training, at
export and in shipped models, without changing what the network computes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import torch
from conftest import CLASSES, make_tiny_model
from onnx import numpy_helper

from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.training.init_from import load_init, open_init_source
from inspect_core.training.unet import DEAD_WEIGHT, ModelConfig, build_model, zero_dead_weights


def _model_with_dead_weights(seed: int = 0):
    torch.manual_seed(seed)
    m = build_model(ModelConfig(in_channels=1, num_classes=3, width=4, depth=2)).eval()
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 4:
                p.view(-1)[::3] = 1e-33  # a third of every conv: a normal float, but dead
                p.view(-1)[1::7] = 1e-40  # and some subnormal ones
    return m


def _dead(values) -> int:
    return sum(int(((v.abs() < DEAD_WEIGHT) & (v != 0)).sum()) for v in values)


def test_flush_zeroes_dead_weights_and_keeps_the_output():
    m = _model_with_dead_weights()
    small = next(p for p in m.parameters() if p.dim() == 4)
    with torch.no_grad():
        small.view(-1)[2] = 1e-6  # small, but alive
    x = torch.randn(1, 1, 32, 48)
    with torch.no_grad():
        before = m(x)
    n = zero_dead_weights(m)
    assert n > 0 and _dead(m.parameters()) == 0
    with torch.no_grad():
        torch.testing.assert_close(m(x), before, rtol=0, atol=1e-6)
    assert zero_dead_weights(m) == 0  # nothing left
    assert abs(float(small.view(-1)[2]) - 1e-6) < 1e-12  # ordinary small weights are left alone


def test_init_from_a_checkpoint_with_dead_weights_drops_them(tmp_path):
    src = _model_with_dead_weights()
    torch.save({"model": src.state_dict()}, tmp_path / "old.pt")
    fresh = build_model(ModelConfig(in_channels=1, num_classes=3, width=4, depth=2))
    log = []
    load_init(fresh, open_init_source(str(tmp_path / "old.pt")), CLASSES, log.append)
    assert _dead(fresh.parameters()) == 0
    assert any("dead weights" in line for line in log)


def test_export_writes_no_dead_weights(tmp_path):
    from inspect_core.training.export import export_onnx

    m = _model_with_dead_weights()
    meta = {
        "classes": CLASSES,
        "mean": 0.5,
        "std": 0.25,
        "channels": 1,
        "input_size": 64,
        "stride": m.stride,
        "ignore_index": 255,
    }
    samples = [np.random.default_rng(0).normal(size=(1, 37, 53)).astype(np.float32)]
    export_onnx(m, tmp_path / "m.onnx", meta, samples, dynamo=False)
    inits = [
        numpy_helper.to_array(i) for i in onnx.load(str(tmp_path / "m.onnx")).graph.initializer
    ]
    assert not any(
        ((np.abs(a) < DEAD_WEIGHT) & (a != 0)).any() for a in inits if a.dtype == np.float32
    )


def test_flush_script_rewrites_an_old_model_without_changing_outputs(tmp_path):
    path = make_tiny_model(tmp_path / "old.onnx", seed=3)
    proto = onnx.load(str(path))
    init = max(proto.graph.initializer, key=lambda i: np.prod(i.dims))
    a = numpy_helper.to_array(init).copy()
    a.reshape(-1)[::2] = 1e-35
    init.CopyFrom(numpy_helper.from_array(a, init.name))
    onnx.save(proto, str(path))
    x = np.random.default_rng(0).standard_normal((1, 1, 40, 40)).astype(np.float32)
    before = OnnxModel(path, threads=1).logits(x)
    out = subprocess.run(
        [sys.executable, "training/flush_weights.py", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "dead weights set to zero" in out
    after = numpy_helper.to_array(
        next(i for i in onnx.load(str(path)).graph.initializer if i.name == init.name)
    )
    assert not ((np.abs(after) < DEAD_WEIGHT) & (after != 0)).any()
    np.testing.assert_allclose(OnnxModel(path, threads=1).logits(x), before, atol=1e-5)
    assert OnnxModel(path, threads=1).classes == CLASSES  # metadata kept
