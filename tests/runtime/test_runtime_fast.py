"""The fast runtime paths give exactly what the plain computations give: ``normalize`` through
a lookup table, the softmax in place, and probabilities with test-time copies, bit for bit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from test_postprocess_fast import NAMES, ref_softmax

from inspect_core.runtime.onnx_model import ModelMeta, OnnxModel, normalize, softmax


def ref_normalize(img, mean, std):
    x = img.astype(np.float32) * (1.0 / 255.0)
    x -= mean
    x *= 1.0 / std
    return np.ascontiguousarray(x[None] if x.ndim == 2 else x.transpose(2, 0, 1))


@pytest.mark.parametrize(
    "mean,std", [(0.5, 0.25), (0.4495820701122284, 0.20415708422660828), (np.float64(0.43), 0.21)]
)
def test_normalize_is_bit_identical(mean, std):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    for img in (
        gray,
        gray[::-1, ::2],
        rgb,
        rgb[:, ::-1],
        np.arange(256, dtype=np.uint8)[None],
        gray.astype(np.float32),
    ):
        got, want = normalize(img, mean, std), ref_normalize(img, mean, std)
        assert got.dtype == want.dtype and got.shape == want.shape and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)


def test_softmax_in_place_is_the_same():
    z = np.random.default_rng(1).normal(0, 8, (3, 4, 17, 23)).astype(np.float32)
    want = ref_softmax(z)
    np.testing.assert_array_equal(softmax(z), want)
    w = z.copy()
    assert softmax(w, inplace=True) is w
    np.testing.assert_array_equal(w, want)


def _fake_model(tta):
    """An OnnxModel whose network is a fixed numpy function (no ONNX Runtime needed)."""
    m = OnnxModel.__new__(OnnxModel)
    m.meta = ModelMeta(NAMES, 0.45, 0.2, 1, 64, stride=8, tta=tuple(tta))
    mix = np.random.default_rng(2).normal(0, 3, (len(NAMES), 3)).astype(np.float32)

    def logits(batch):  # depends on position, so flips matter
        x = np.ascontiguousarray(batch, np.float32)[:, 0]
        feats = np.stack([x, np.roll(x, 1, -1), np.roll(x, 2, -2) * x])
        return np.einsum("kf,fnhw->nkhw", mix, feats).astype(np.float32)

    m.logits = logits
    m.engine = None  # no file: no features output either
    return m


@pytest.mark.parametrize("tta", [(), ("h",), ("h", "v"), ("h", "v", "hv")])
def test_probabilities_are_bit_identical(tta):
    m = _fake_model(tta)
    img = np.random.default_rng(3).integers(0, 256, (40, 56), np.uint8)
    x = ref_normalize(img, m.meta.mean, m.meta.std)[None]
    if not tta:
        want = ref_softmax(m.logits(x))[0]
    else:
        axes = {"h": (3,), "v": (2,), "hv": (2, 3)}
        flips = [axes[f] for f in tta]
        p = ref_softmax(m.logits(np.concatenate([x] + [np.flip(x, a) for a in flips])))
        out = p[:1].copy()
        for k, a in enumerate(flips, start=1):
            out += np.flip(p[k : k + 1], a)
        want = (out / (1 + len(flips)))[0]
    got = m.probabilities(img)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(m.probabilities_batch([img, img])[1], want)
    # tiles go through the same softmax: unchanged by the fast path
    m2 = _fake_model(tta)
    m2.meta = replace(m2.meta, tile_size=16)
    assert m2.probabilities(img).shape == (len(NAMES), 40, 56)
