"""Test-time augmentation: flipped copies are un-flipped and averaged, in one run."""
from dataclasses import replace

import numpy as np

from inspect_core.runtime import OnnxModel, softmax


def test_flip_tta_averages_unflipped_probabilities(tiny_model):
    m = OnnxModel(tiny_model, threads=1)
    img = np.random.default_rng(3).integers(0, 255, (40, 56), np.uint8)
    x = m.prepare(img)[None]
    plain = softmax(m.logits(x))[0]
    flipped = softmax(m.logits(x[..., ::-1].copy()))[0][..., ::-1]
    m.meta = replace(m.meta, tta=("h",))
    got = m.probabilities(img)
    np.testing.assert_allclose(got, (plain + flipped) / 2, atol=1e-5)
    assert not np.allclose(got, plain, atol=1e-4)  # the flip really changed something
    np.testing.assert_allclose(got.sum(0), 1.0, atol=1e-5)


def test_tta_also_applies_to_tiles(tiny_model):
    m = OnnxModel(tiny_model, threads=1)
    m.meta = replace(m.meta, tta=("h", "v"))
    img = np.random.default_rng(4).integers(0, 255, (70, 90), np.uint8)
    p = m.probabilities(img, tile=32)
    assert p.shape == (3, 70, 90)
    np.testing.assert_allclose(p.sum(0), 1.0, atol=1e-5)
