"""The class prior correction (``class_bias`` in a model's metadata) applied by the runtime."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
from test_runtime_fast import _fake_model

from inspect_core.errors import ModelError
from inspect_core.runtime.model_file import edit_meta
from inspect_core.runtime.onnx_model import OnnxModel


def _img():
    return np.random.default_rng(5).integers(0, 256, (40, 56), np.uint8)


@pytest.mark.parametrize("tta", [(), ("h", "v")])
def test_bias_reweights_the_averaged_probabilities(tta):
    m = _fake_model(tta)
    plain = m.probabilities(_img())
    bias = np.array([0.7, -1.2, 0.3, 0.0], np.float32)
    m.meta = replace(m.meta, class_bias=tuple(float(b) for b in bias))
    got = m.probabilities(_img())
    want = plain * np.exp(bias)[:, None, None]
    want /= want.sum(0, keepdims=True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.sum(0), 1.0, rtol=1e-5)
    # a shift of every class by the same amount changes nothing
    m.meta = replace(m.meta, class_bias=tuple(float(b) + 2.0 for b in bias))
    np.testing.assert_allclose(m.probabilities(_img()), got, rtol=1e-5, atol=1e-6)


def test_bias_moves_the_decision_towards_background():
    m = _fake_model(())
    before = m.probabilities(_img()).argmax(0)
    m.meta = replace(m.meta, class_bias=(3.0, 0.0, 0.0, 0.0))
    after = m.probabilities(_img()).argmax(0)
    assert (after == 0).sum() > (before == 0).sum()
    assert np.all(after[before == 0] == 0)  # background only gains pixels


def test_zero_bias_is_the_uncalibrated_model():
    m = _fake_model(("h",))
    plain = m.probabilities(_img())
    m.meta = replace(m.meta, class_bias=(0.0, 0.0, 0.0, 0.0))
    np.testing.assert_array_equal(m.probabilities(_img()), plain)


def _with_bias(src, dst, bias):
    shutil.copy(src, dst)
    edit_meta(dst, lambda meta: meta.update(class_bias=bias))
    return dst


def test_bias_is_read_from_the_model_file(tiny_model, tmp_path):
    m = OnnxModel(_with_bias(tiny_model, tmp_path / "cal.onnx", [1.5, 0.0, -0.5]), threads=1)
    assert m.meta.class_bias == (1.5, 0.0, -0.5)


def test_bias_of_the_wrong_length_is_refused(tiny_model, tmp_path):
    path = _with_bias(tiny_model, tmp_path / "bad.onnx", [1.0, 0.0])
    with pytest.raises(ModelError, match="class_bias.*recalibrate"):
        OnnxModel(path, threads=1)
