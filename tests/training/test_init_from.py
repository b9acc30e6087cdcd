"""`inspect train --init-from`: shipped weights start a new model; a new head when classes
differ."""

import pytest
import torch

from inspect_core.errors import InspectError
from inspect_core.training.run import load_init
from inspect_core.training.unet import ModelConfig, build_model


def test_init_from_keeps_matching_layers_and_reinitialises_the_head(tmp_path):
    torch.manual_seed(0)
    src = build_model(ModelConfig(in_channels=1, num_classes=4, width=8, depth=2))
    torch.save({"model": src.state_dict(), "config": src.cfg.to_dict()}, tmp_path / "m.pt")
    (tmp_path / "m.onnx").write_bytes(b"")  # resolved to the .pt beside it
    torch.manual_seed(1)
    dst = build_model(ModelConfig(in_channels=1, num_classes=2, width=8, depth=2))
    before_head = dst.head.weight.detach().clone()
    messages = []
    load_init(dst, str(tmp_path / "m.onnx"), messages.append)
    s, d = src.state_dict(), dst.state_dict()
    assert torch.equal(d["stem.0.weight"], s["stem.0.weight"])
    assert torch.equal(d["enc.1.body.0.0.weight"], s["enc.1.body.0.0.weight"])
    assert d["head.weight"].shape[0] == 2 and torch.equal(dst.head.weight, before_head)
    assert "re-initialised 2" in messages[0] and "head.bias" in messages[0]


def test_init_from_missing_weights_is_clear(tmp_path):
    model = build_model(ModelConfig(width=4, depth=2))
    with pytest.raises(InspectError, match="no weights to start from"):
        load_init(model, str(tmp_path / "nothing.onnx"), print)
