"""The U-Net takes any input size and returns logits of exactly that size, for every variant."""

from __future__ import annotations

import pytest
import torch

from inspect_core.training.unet import ModelConfig, build_model, count_parameters

SIZES = [(37, 53), (1, 1), (1, 9), (5, 3), (200, 200)]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread is far faster than several contending for a busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _model(**kw):
    torch.manual_seed(0)
    cfg = dict(num_classes=3, width=4, depth=2)
    cfg.update(kw)
    return build_model(ModelConfig(**cfg)).eval()


@pytest.mark.parametrize("arch", ["enhanced", "plain"])
@pytest.mark.parametrize("stem_stride", [1, 2])
@pytest.mark.parametrize("in_channels", [1, 3])
def test_output_has_input_size(arch, stem_stride, in_channels):
    model = _model(arch=arch, stem_stride=stem_stride, in_channels=in_channels)
    assert model.stride == stem_stride * 4
    for h, w in SIZES:
        with torch.no_grad():
            y = model(torch.randn(2, in_channels, h, w))
        assert y.shape == (2, 3, h, w), (arch, stem_stride, in_channels, h, w)
        assert torch.isfinite(y).all()


def test_deeper_network_on_inputs_smaller_than_its_stride():
    model = _model(depth=4, stem_stride=2)  # stride 32
    assert model.stride == 32
    for h, w in [(3, 70), (31, 33), (64, 65)]:
        with torch.no_grad():
            assert model(torch.randn(1, 1, h, w)).shape == (1, 3, h, w)


def test_batch_items_are_independent_in_eval():
    """Eval mode (running batch-norm statistics): one image's logits do not depend on its
    batch mates, so batched inference equals one-by-one inference."""
    model = _model()
    x = torch.randn(3, 1, 37, 53)
    with torch.no_grad():
        together = model(x)
        alone = torch.cat([model(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ["enhanced", "plain"])
def test_every_parameter_gets_a_gradient(arch):
    """A module that silently drops out of the forward pass (e.g. an attention gate never
    applied) would never train."""
    model = _model(arch=arch).train()
    model(torch.randn(2, 1, 24, 20)).square().mean().backward()
    missing = [
        n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert not missing


def test_enhanced_has_attention_gates_plain_has_none():
    from inspect_core.training.unet import AttentionGate

    enhanced, plain = _model(arch="enhanced"), _model(arch="plain")
    assert sum(isinstance(m, AttentionGate) for m in enhanced.modules()) == 2
    assert not any(isinstance(m, AttentionGate) for m in plain.modules())
    assert count_parameters(enhanced) > 0 and count_parameters(plain) > 0


def test_width_is_capped_by_max_width():
    model = _model(width=8, depth=3, max_width=16)
    seen = []
    for enc in model.enc:
        enc.register_forward_hook(lambda m, i, o: seen.append(o.shape[1]))
    with torch.no_grad():
        model(torch.randn(1, 1, 32, 32))
    assert seen == [8, 16, 16, 16]


def test_config_round_trip_ignores_unknown_keys():
    cfg = ModelConfig(in_channels=3, num_classes=5, width=8, depth=3, stem_stride=2, arch="plain")
    d = cfg.to_dict() | {"something_newer": 1}
    assert ModelConfig.from_dict(d) == cfg


@pytest.mark.parametrize("bad", [dict(arch="resnet"), dict(stem_stride=3)])
def test_invalid_config_is_rejected(bad):
    with pytest.raises(ValueError):
        build_model(ModelConfig(**bad))
