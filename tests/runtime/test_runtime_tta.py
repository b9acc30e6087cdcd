"""Test-time augmentation: flipped and rotated copies are mapped back and averaged."""

import shutil
from dataclasses import replace

import numpy as np
import pytest

from inspect_core.errors import ModelError
from inspect_core.runtime.model_file import edit_meta
from inspect_core.runtime.onnx_model import TTA_TRANSFORMS, OnnxModel, softmax

ALL = tuple(TTA_TRANSFORMS)


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


def test_each_inverse_undoes_its_transform_and_the_eight_are_distinct():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    for name, (fwd, inv) in TTA_TRANSFORMS.items():
        y = fwd(x)
        assert y.shape[2:] == ((5, 4) if name in ("t", "at", "r90", "r270") else (4, 5)), name
        np.testing.assert_array_equal(inv(y), x, err_msg=name)
    sq = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    images = {fwd(sq).tobytes() for fwd, _ in TTA_TRANSFORMS.values()} | {sq.tobytes()}
    assert len(images) == 8  # identity + 7: the whole symmetry group of the square


def test_transposed_copies_of_a_non_square_image_are_mapped_back(tiny_model):
    m = OnnxModel(tiny_model, threads=1)
    img = np.random.default_rng(6).integers(0, 255, (36, 52), np.uint8)
    plain = softmax(m.logits(m.prepare(img)[None]))[0]
    turned = softmax(m.logits(m.prepare(np.ascontiguousarray(img.T))[None]))[0]
    m.meta = replace(m.meta, tta=("h", "t"))
    mirrored = softmax(m.logits(m.prepare(img[:, ::-1].copy())[None]))[0][..., ::-1]
    got = m.probabilities(img)
    assert got.shape == plain.shape
    np.testing.assert_allclose(got, (plain + mirrored + turned.transpose(0, 2, 1)) / 3, atol=1e-5)


@pytest.mark.parametrize("shape", [(32, 48), (40, 40)])
def test_averaging_over_all_eight_makes_the_model_rotation_invariant(tiny_model, shape):
    """Sizes are multiples of the network's stride (no padding), so each copy sees the
    same pixels: turning the image then only turns the averaged probabilities."""
    m = OnnxModel(tiny_model, threads=1)
    img = np.random.default_rng(7).integers(0, 255, shape, np.uint8)
    turned = np.ascontiguousarray(np.rot90(img))
    plain = m.probabilities(turned)
    assert not np.allclose(plain, np.rot90(m.probabilities(img), axes=(1, 2)), atol=1e-3)
    m.meta = replace(m.meta, tta=ALL)
    np.testing.assert_allclose(
        m.probabilities(turned), np.rot90(m.probabilities(img), axes=(1, 2)), atol=1e-5
    )


def test_an_unknown_transform_in_the_metadata_is_refused(tiny_model, tmp_path):
    path = tmp_path / "odd.onnx"
    shutil.copy(tiny_model, path)
    edit_meta(path, lambda meta: meta.update(tta=["h", "spin"]))
    with pytest.raises(ModelError, match=r"odd.onnx.*\['spin'\].*choose_tta"):
        OnnxModel(path, threads=1)
