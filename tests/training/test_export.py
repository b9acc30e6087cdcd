"""ONNX export: parity with torch, embedded metadata, dynamic axes, and the failure path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import inspect_core.training.export as export_mod
from inspect_core.errors import ExportError
from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.training.export import check_parity, export_onnx
from inspect_core.training.unet import ModelConfig, build_model

CLASSES = ["background", "crack", "pit", "stain"]
META = {
    "classes": CLASSES,
    "mean": 0.41,
    "std": 0.19,
    "channels": 3,
    "input_size": 96,
    "stride": 8,
    "ignore_index": 255,
}


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(in_channels=3, num_classes=len(CLASSES), width=4, depth=2, stem_stride=2)
    cfg.update(kw)
    model = build_model(ModelConfig(**cfg)).eval()
    with torch.no_grad():  # make logits spread over classes so argmax parity means something
        model.head.weight.mul_(20)
    return model


def _samples(seed=0, sizes=((37, 53), (64, 40))):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(3, h, w)).astype(np.float32) for h, w in sizes]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Exported once with the default exporter (the one ``inspect train`` uses); the other
    tests use the fast legacy exporter, since the code paths they check do not depend on it."""
    torch.set_num_threads(1)
    model = _model()
    path = tmp_path_factory.mktemp("export") / "m.onnx"
    result = export_onnx(model, path, dict(META), _samples())
    return model, path, result


def test_parity_result(exported):
    _, path, result = exported
    assert path.is_file()
    assert result["samples"] == 2
    assert result["max_abs_diff"] <= export_mod.MAX_ABS_DIFF
    assert result["argmax_agreement"] >= export_mod.MIN_ARGMAX_AGREEMENT


def test_file_carries_its_metadata(exported):
    _, path, _ = exported
    m = OnnxModel(path, threads=1)
    assert m.classes == CLASSES
    assert m.meta.mean == pytest.approx(0.41) and m.meta.std == pytest.approx(0.19)
    assert m.meta.channels == 3 and m.meta.input_size == 96 and m.meta.stride == 8


@pytest.mark.parametrize("shape", [(2, 3, 37, 53), (1, 3, 1, 1), (3, 3, 5, 71), (1, 3, 200, 200)])
def test_dynamic_batch_height_width(exported, shape):
    model, path, _ = exported
    m = OnnxModel(path, threads=1)
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    got = m.logits(x)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert got.shape == ref.shape == (shape[0], len(CLASSES), *shape[2:])
    assert np.abs(got - ref).max() < 1e-3
    assert (got.argmax(1) == ref.argmax(1)).mean() > 0.999


def test_tolerance_failure_raises_and_removes_file(tmp_path, monkeypatch):
    monkeypatch.setattr(export_mod, "MAX_ABS_DIFF", -1.0)
    path = tmp_path / "bad.onnx"
    with pytest.raises(ExportError) as e:
        export_onnx(_model(), path, dict(META), _samples(sizes=((16, 16),)), dynamo=False)
    msg = str(e.value)
    assert str(path) in msg
    assert "disagrees with torch" in msg and "max |logit diff|" in msg
    assert "removed" in msg
    assert not path.exists()


class _DivergesWhenNotTraced(torch.nn.Module):
    """Eager output differs from the exported graph (as with an op the exporter mishandles)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        y = self.inner(x)
        if not (torch.jit.is_tracing() or torch.compiler.is_compiling()):
            y = y + torch.linspace(0, 3, y.shape[1]).view(1, -1, 1, 1) * x.mean()
        return y


def test_graph_that_does_not_reproduce_torch_is_refused(tmp_path):
    path = tmp_path / "diverge.onnx"
    with pytest.raises(ExportError, match="removed"):
        export_onnx(_DivergesWhenNotTraced(_model()), path, dict(META), _samples(), dynamo=False)
    assert not path.exists()


def test_check_parity_detects_other_weights(exported):
    _, path, _ = exported
    with pytest.raises(ExportError, match="disagrees with torch"):
        check_parity(_model(seed=1), path, _samples())
    # and accepts the weights it was exported from
    assert check_parity(exported[0], path, _samples(seed=5))["max_abs_diff"] < 1e-3


def test_export_without_samples_checks_on_noise(tmp_path):
    meta = dict(META, channels=1)
    path = tmp_path / "nosamples.onnx"
    result = export_onnx(_model(in_channels=1), path, meta, [], dynamo=False)
    assert result["samples"] == 1 and result["max_abs_diff"] <= export_mod.MAX_ABS_DIFF
    assert OnnxModel(path, threads=1).logits(np.zeros((1, 1, 33, 17), np.float32)).shape == (
        1,
        4,
        33,
        17,
    )


def test_channels_last_model_is_exported_correctly(tmp_path):
    """Training keeps the model channels_last; export must still reproduce it."""
    model = _model(arch="plain").to(memory_format=torch.channels_last)
    path = tmp_path / "cl.onnx"
    assert export_onnx(model, path, dict(META), _samples(), dynamo=False)["argmax_agreement"] == 1.0
