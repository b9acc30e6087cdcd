"""ONNX Runtime inference: metadata, whole images, batches and sliding-window tiles."""

from __future__ import annotations

import numpy as np
import pytest

from inspect_core.errors import ModelError
from inspect_core.runtime.onnx_model import OnnxModel, blend_window, normalize, softmax, tile_starts

RF_RADIUS = 32  # receptive-field radius bound of the width-4, depth-2 U-Net (checked below)


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _image(h, w, seed=0, channels=1):
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels == 1 else (h, w, 3)
    img = rng.normal(120, 40, shape).clip(0, 255).astype(np.uint8)
    img[h // 4 : h // 2, w // 3 : w // 2] = 230
    img[h // 2 : h * 3 // 4, w // 10 : w // 4] = 20
    return img


@pytest.fixture(scope="module")
def spread_model(tmp_path_factory):
    """A random tiny U-Net whose head is rescaled so its logits spread over all classes (a raw
    random network predicts one class everywhere, which makes every comparison trivially
    agree). Returns (torch model, OnnxModel)."""
    import torch

    from inspect_core.training.export import export_onnx
    from inspect_core.training.unet import ModelConfig, build_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model(ModelConfig(in_channels=1, num_classes=3, width=4, depth=2)).eval()
    x = torch.from_numpy(normalize(_image(96, 120), 0.5, 0.25))[None]
    with torch.no_grad():
        lg = model(x)[0]
        f = 3.0 / lg.std((1, 2))
        model.head.weight.mul_(f[:, None, None, None])
        model.head.bias.mul_(f)
        model.head.bias.sub_(model(x)[0].mean((1, 2)))
    meta = {
        "classes": ["background", "a", "b"],
        "mean": 0.5,
        "std": 0.25,
        "channels": 1,
        "input_size": 64,
        "stride": model.stride,
    }
    path = tmp_path_factory.mktemp("rt") / "spread.onnx"
    export_onnx(model, path, meta, [x[0].numpy()], dynamo=False)
    return model, OnnxModel(path, threads=1)


# --------------------------------------------------------------------------- loading


def test_reads_metadata(tiny_model):
    m = OnnxModel(tiny_model, threads=1)
    assert m.classes == ["background", "scratch", "dent"]
    assert (m.meta.mean, m.meta.std, m.meta.channels, m.meta.input_size) == (0.5, 0.25, 1, 64)
    assert m.meta.stride == 4
    assert m.meta.tile == 512  # default: max(512, input_size)


def test_missing_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        OnnxModel(tmp_path / "nope.onnx")


def test_garbage_file_is_a_model_error(tmp_path):
    p = tmp_path / "junk.onnx"
    p.write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelError, match="cannot load"):
        OnnxModel(p)


def test_model_without_metadata_is_refused(tiny_model, tmp_path):
    import onnx

    proto = onnx.load(str(tiny_model))
    del proto.metadata_props[:]
    p = tmp_path / "bare.onnx"
    onnx.save(proto, str(p))
    with pytest.raises(ModelError, match="inspect.meta"):
        OnnxModel(p)


# --------------------------------------------------------------------------- whole images


def test_normalize_matches_training():
    """The runtime and the trainer must feed the network identical numbers: the trainer uses
    the runtime's normalize, and it equals the plain formula."""
    from inspect_core.training.trainer import normalize as train_normalize

    assert train_normalize is normalize
    for img in (_image(13, 17), _image(13, 17, channels=3)):
        ref = (img.astype(np.float32) / 255.0 - 0.43) / 0.21
        ref = ref[None] if img.ndim == 2 else ref.transpose(2, 0, 1)
        a, b = normalize(img, 0.43, 0.21), ref
        assert a.shape == b.shape == ((1,) if img.ndim == 2 else (3,)) + img.shape[:2]
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_probabilities_shape_and_sum(tiny_model):
    m = OnnxModel(tiny_model, threads=1)
    for h, w in [(37, 53), (1, 1), (90, 130)]:
        p = m.probabilities(_image(h, w))
        assert p.shape == (3, h, w) and p.dtype == np.float32
        np.testing.assert_allclose(p.sum(0), 1.0, atol=1e-5)


def test_rgb_input_to_gray_model_is_converted(tiny_model):
    m = OnnxModel(tiny_model, threads=1)
    gray = _image(40, 50)
    rgb = np.dstack([gray] * 3)
    np.testing.assert_allclose(m.probabilities(rgb), m.probabilities(gray), atol=1e-6)


def test_batch_of_two_equals_one_by_one(spread_model):
    _, m = spread_model
    imgs = [_image(37, 53, seed=1), _image(37, 53, seed=2)]
    batched = m.probabilities_batch(imgs)
    for b, im in zip(batched, imgs):
        np.testing.assert_allclose(b, m.probabilities(im), atol=1e-5)
    # different sizes fall back to one by one
    mixed = m.probabilities_batch([_image(20, 30), _image(31, 17)])
    assert [p.shape for p in mixed] == [(3, 20, 30), (3, 31, 17)]


def test_a_batch_is_tiled_as_the_recipe_says_like_one_image(spread_model):
    _, m = spread_model
    imgs = [_image(40, 600, seed=1), _image(40, 600, seed=2)]  # wider than the model's 512
    batched = m.probabilities_batch(imgs, tile=1024, overlap=0.125)  # a recipe's tile = 1024
    for b, im in zip(batched, imgs):
        np.testing.assert_allclose(b, m.probabilities(im, tile=1024, overlap=0.125), atol=1e-5)
    # the model's own 512 px tiles give other numbers at their seams: the check can tell
    assert np.abs(batched[0] - m.probabilities(imgs[0])).max() > 1e-4


def test_onnx_matches_torch_on_odd_size(spread_model):
    import torch

    model, m = spread_model
    img = _image(45, 67, seed=3)
    x = normalize(img, 0.5, 0.25)[None]
    with torch.no_grad():
        ref = torch.softmax(model(torch.from_numpy(x)), 1)[0].numpy()
    np.testing.assert_allclose(m.probabilities(img), ref, atol=1e-4)


# --------------------------------------------------------------------------- tiling


def test_tile_starts_cover_and_align():
    assert tile_starts(50, 64, 0.25) == [0]
    for length, tile, ov, align in [
        (96, 32, 0.25, 1),
        (150, 100, 0.25, 4),
        (200, 64, 0.5, 16),
        (1000, 512, 0.25, 32),
        (96, 48, 0.9, 4),
    ]:
        starts = tile_starts(length, tile, ov, align)
        assert starts[0] == 0 and starts[-1] == length - tile
        assert all(b > a for a, b in zip(starts, starts[1:]))
        assert all(b - a <= tile for a, b in zip(starts, starts[1:]))  # no gaps
        if length % align == 0 and tile % align == 0:
            assert all(s % align == 0 for s in starts)


def test_blend_window_positive_and_peaked():
    w = blend_window(40, 24)
    assert w.shape == (40, 24) and (w > 0).all()
    assert w[20, 12] == w.max() and w[0, 0] == w.min()
    np.testing.assert_array_equal(w, w[::-1, ::-1])


@pytest.mark.parametrize(
    "h,w,tile,overlap",
    [(96, 120, 32, 0.25), (95, 121, 40, 0.5), (150, 61, 64, 0.25), (33, 200, 16, 0.1)],
)
def test_tiling_bookkeeping_is_exact_for_a_pointwise_model(tiny_model, h, w, tile, overlap):
    """With a network whose output at a pixel depends only on that pixel, tiling must give
    exactly the whole-image result: any offset, coverage or normalisation mistake in the
    blending shows up here."""
    m = OnnxModel(tiny_model, threads=1)

    def pointwise(batch):
        x = batch[:, :1]
        return np.concatenate([x, -x, x * x - 1], 1).astype(np.float32)

    m.logits = pointwise
    img = _image(h, w, seed=4)
    whole = m.probabilities(img, tile=10_000)
    tiled = m.probabilities(img, tile=tile, overlap=overlap)
    assert tiled.shape == whole.shape == (3, h, w)
    np.testing.assert_allclose(tiled, whole, atol=1e-6)


def test_receptive_field_bound(spread_model):
    """Backs RF_RADIUS: an output pixel does not depend on inputs farther away than that."""
    import torch

    model, _ = spread_model
    # gradient of an 8x8 block of outputs (a single pixel can be dead behind the ReLUs)
    x = torch.randn(3, 1, 112, 112, requires_grad=True)
    model(x)[:, :, 52:60, 52:60].sum().backward()
    ys, xs = np.nonzero(x.grad.abs().sum((0, 1)).numpy())
    reach = max(52 - ys.min(), ys.max() - 59, 52 - xs.min(), xs.max() - 59)
    assert 10 < reach <= RF_RADIUS
    # and directly: changing every input pixel beyond RF_RADIUS leaves the block unchanged
    far = torch.ones(112, 112, dtype=torch.bool)
    far[52 - RF_RADIUS : 60 + RF_RADIUS, 52 - RF_RADIUS : 60 + RF_RADIUS] = False
    with torch.no_grad():
        x2 = torch.where(far, torch.randn_like(x) * 3, x)
        torch.testing.assert_close(model(x2)[..., 52:60, 52:60], model(x)[..., 52:60, 52:60])


def _safe_pixels(h, w, tile, overlap, stride, r):
    """Pixels whose receptive field lies inside every tile covering them (tile edges on the
    image border do not count: the whole image ends there too)."""
    hp, wp = -(-h // stride) * stride, -(-w // stride) * stride
    t = max(stride, tile // stride * stride)
    th, tw = min(t, hp), min(t, wp)
    safe = np.ones((hp, wp), bool)
    for y in tile_starts(hp, th, overlap, stride):
        for x in tile_starts(wp, tw, overlap, stride):
            inner = np.zeros((hp, wp), bool)
            inner[
                y + r if y else 0 : y + th - r if y + th < hp else hp,
                x + r if x else 0 : x + tw - r if x + tw < wp else wp,
            ] = True
            covered = np.zeros((hp, wp), bool)
            covered[y : y + th, x : x + tw] = True
            safe &= ~covered | inner
    return safe[:h, :w]


@pytest.mark.parametrize(
    "h,w,tile,overlap",
    [(150, 150, 100, 0.25), (150, 150, 96, 0.25), (96, 120, 64, 0.5), (131, 157, 90, 0.3)],
)
def test_tiled_equals_whole_image(spread_model, h, w, tile, overlap):
    """Tiles reproduce whole-image inference exactly wherever the receptive field stays inside
    every covering tile (tile offsets are multiples of the network stride, so the pooling grid
    is the same); only a band of RF_RADIUS pixels around inner tile edges may differ, and the
    blending keeps that small."""
    _, m = spread_model
    img = _image(h, w, seed=7)
    whole = m.probabilities(img, tile=10_000)
    tiled = m.probabilities(img, tile=tile, overlap=overlap)
    assert tiled.shape == whole.shape
    np.testing.assert_allclose(tiled.sum(0), 1.0, atol=1e-5)
    safe = _safe_pixels(h, w, tile, overlap, m.meta.stride, RF_RADIUS)
    assert safe.mean() > 0.2  # 0.31 to 0.54 for these cases
    diff = np.abs(tiled - whole)
    assert diff[:, safe].max() < 1e-4
    # over the whole image, seams included (measured for these cases: agreement >= 0.9978,
    # mean |diff| <= 1.3e-3; without stride-aligned tiles: 0.974 and 1.4e-2)
    assert (tiled.argmax(0) == whole.argmax(0)).mean() > 0.995
    assert diff.mean() < 2e-3


def test_softmax_is_stable():
    p = softmax(np.array([[[[1000.0]], [[0.0]], [[-1000.0]]]], np.float32))
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p[0, :, 0, 0], [1, 0, 0], atol=1e-6)
