"""The familiarity's graph surgery (issue 25 item 1): a copy of an exported U-Net with a
``features`` output, the logits bit-identical, the features what torch computes, on a tiny
export, on every shipped segmentation model and its int8 file, and a clear refusal of a graph
that is no inspect U-Net."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx_kit import conv_model

from inspect_core.errors import ModelError
from inspect_core.health.familiarity_graph import (
    FAMILIARITY_KEY,
    FEATURES,
    POOLED_BLOCKS,
    add_features,
)
from inspect_core.runtime.engines import META_KEY
from inspect_core.training.export import export_onnx
from inspect_core.training.unet import ModelConfig, build_model

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(
    p
    for p in (ROOT / "plugins" / "inspect_plugins").glob("*/models/*.onnx")
    if "anomaly" not in p.name  # an anomaly model has its own score
)


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _export(path: Path, arch: str = "enhanced", channels: int = 1) -> torch.nn.Module:
    """A random tiny U-Net (width 4, depth 2) exported by the fast exporter."""
    torch.manual_seed(0)
    cfg = ModelConfig(in_channels=channels, num_classes=3, width=4, depth=2, arch=arch)
    model = build_model(cfg).eval()
    # random batch-norm statistics, so that each layer does something a test can see
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    meta = {"classes": ["a", "b", "c"], "mean": 0.5, "std": 0.25, "channels": channels}
    meta |= {"input_size": 64, "stride": model.stride}
    sample = np.random.default_rng(0).normal(size=(channels, 37, 53)).astype(np.float32)
    export_onnx(model, path, meta, [sample], dynamo=False)
    return model


@pytest.mark.parametrize("arch", ["enhanced", "plain"])
def test_the_copy_keeps_the_logits_and_pools_the_first_blocks_as_torch_does(tmp_path, arch):
    """The mean and spread of each channel of enc.0 and enc.1 max-pooled (the next levels'
    inputs), over the image, as torch computes them."""
    model = _export(tmp_path / "m.onnx", arch)
    layout = add_features(tmp_path / "m.onnx", tmp_path / "f.onnx")
    assert [b.block for b in layout.blocks] == list(POOLED_BLOCKS)
    assert [b.channels for b in layout.blocks] == [4, 8] and layout.width == 24
    before, after = _session(tmp_path / "m.onnx"), _session(tmp_path / "f.onnx")
    assert [o.name for o in after.get_outputs()] == ["logits", FEATURES]
    captured: list[torch.Tensor] = []
    hooks = [
        model.down[i].register_forward_hook(lambda m, i, o: captured.append(o)) for i in (0, 1)
    ]
    rng = np.random.default_rng(1)
    for h, w in [(37, 53), (64, 64), (20, 90)]:  # off the stride too: the network pads
        x = rng.normal(size=(2, 1, h, w)).astype(np.float32)
        logits, features = after.run(None, {"image": x})
        assert np.array_equal(logits, before.run(None, {"image": x})[0])  # bit-identical
        assert features.shape == (2, 24)
        captured.clear()
        with torch.no_grad():
            model(torch.from_numpy(x))
        want = np.concatenate(
            [np.concatenate([t.mean((2, 3)), t.std((2, 3), unbiased=False)], 1) for t in captured],
            1,
        )
        np.testing.assert_allclose(features, want, rtol=1e-4, atol=1e-5)
    for hook in hooks:
        hook.remove()


def test_the_copy_keeps_the_metadata_and_says_what_the_features_are(tmp_path):
    _export(tmp_path / "m.onnx", channels=3)
    add_features(tmp_path / "m.onnx", tmp_path / "f.onnx")
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "f.onnx")).metadata_props}
    original = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert props[META_KEY] == original[META_KEY]
    said = json.loads(props[FAMILIARITY_KEY])
    assert said["output"] == FEATURES
    assert said["blocks"] == [
        {"block": "enc.0", "after": "MaxPool", "channels": 4},
        {"block": "enc.1", "after": "MaxPool", "channels": 8},
    ]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_segmentation_model_gives_the_features_of_its_first_blocks(tmp_path, path):
    """Shipped as the copy with the features output (inspect health familiarity --in-place),
    the dynamo exporter's graphs and the int8 (QDQ) files alike; a second one is refused."""
    card = json.loads(path.with_name(path.name.split(".")[0] + ".json").read_text())
    arch = card["architecture"]
    after = _session(path)
    assert [o.name for o in after.get_outputs()][:2] == ["logits", "features"]
    meta = after.get_modelmeta().custom_metadata_map
    pooled = json.loads(meta[FAMILIARITY_KEY])["blocks"]
    assert [b["channels"] for b in pooled] == [arch["width"], 2 * arch["width"]]
    channels = after.get_inputs()[0].shape[1]
    x = np.random.default_rng(0).normal(size=(1, channels, 70, 100)).astype(np.float32)
    logits, features = after.run(None, {"image": x})
    assert logits.shape[1] == len(card["classes"])
    assert features.shape == (1, 6 * arch["width"])
    assert np.all(np.isfinite(features)) and np.all(features >= 0)  # means, spreads of ReLUs
    with pytest.raises(ModelError, match="already has a 'features' output"):
        add_features(path, tmp_path / path.name)


def test_a_graph_without_the_encoder_pattern_is_refused_naming_the_file(tmp_path):
    meta = {"classes": ["a", "b"], "mean": 0.5, "std": 0.25, "channels": 1, "input_size": 64}
    path = conv_model(tmp_path / "flat.onnx", meta)
    with pytest.raises(ModelError, match="flat.onnx: no encoder block") as e:
        add_features(path, tmp_path / "out.onnx")
    assert "not a U-Net exported by inspect" in str(e.value)
    assert not (tmp_path / "out.onnx").exists()


def test_a_file_that_is_no_onnx_model_is_refused_naming_it(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="broken.onnx: not a readable ONNX model"):
        add_features(bad, tmp_path / "out.onnx")


def test_blocks_the_network_does_not_have_or_cannot_pool_are_refused(tmp_path):
    _export(tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="no encoder block enc.7"):
        add_features(tmp_path / "m.onnx", tmp_path / "f.onnx", blocks=(0, 7))
    with pytest.raises(ModelError, match="enc.2 is not down-sampled"):  # the deepest
        add_features(tmp_path / "m.onnx", tmp_path / "f.onnx", blocks=(0, 2))


def test_it_never_writes_over_the_model_nor_adds_a_second_features_output(tmp_path):
    _export(tmp_path / "m.onnx")
    before = (tmp_path / "m.onnx").read_bytes()
    with pytest.raises(ModelError, match="would overwrite the model"):
        add_features(tmp_path / "m.onnx", tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").read_bytes() == before
    add_features(tmp_path / "m.onnx", tmp_path / "f.onnx")
    with pytest.raises(ModelError, match="f.onnx: already has a 'features' output"):
        add_features(tmp_path / "f.onnx", tmp_path / "g.onnx")
