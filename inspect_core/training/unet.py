"""The segmentation networks: the enhanced U-Net and a plain U-Net for comparison.

Read top to bottom: building blocks first, then the two networks that use them.

Enhanced U-Net = U-Net whose convolutions are depthwise separable, grouped into residual
blocks, with an attention gate on every skip connection. An optional stride-2 stem runs the
network at half resolution and upsamples the logits back: on a CPU the full-resolution
batch-norm/ReLU layers dominate training time, and for defects wider than a few pixels the
half-resolution encoder loses nothing measurable.

Any input size works: the input is padded (reflect) to a multiple of the network's stride and
the logits are cropped back, so the output always has the input's height and width.

This module needs torch (the ``train`` extra); inference goes through ONNX Runtime instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network (stored in checkpoints and model cards)."""

    in_channels: int = 1
    num_classes: int = 2
    width: int = 16  # channels at the first level; doubled at each level below
    depth: int = 4  # number of down-sampling steps
    stem_stride: int = 1  # 1 = full resolution, 2 = run the U-Net at half resolution
    arch: str = "enhanced"  # "enhanced" or "plain"
    max_width: int = 256

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


# --------------------------------------------------------------------------- blocks


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 convolution, then pointwise 1x1, then batch-norm and (optionally) ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1, act: bool = True):
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """Two separable convolutions with an identity (or 1x1 projected) shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(SeparableConv(cin, cout), SeparableConv(cout, cout, act=False))
        self.shortcut = (
            nn.Identity()
            if cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class AttentionGate(nn.Module):
    """Additive attention (Oktay et al. 2018): the decoder signal ``g`` weights the skip ``x``."""

    def __init__(self, x_ch: int, g_ch: int, inter: int):
        super().__init__()
        self.wx = nn.Sequential(nn.Conv2d(x_ch, inter, 1, bias=False), nn.BatchNorm2d(inter))
        self.wg = nn.Sequential(nn.Conv2d(g_ch, inter, 1, bias=False), nn.BatchNorm2d(inter))
        self.psi = nn.Sequential(nn.Conv2d(inter, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.wx(x) + self.wg(g))
        return x * self.psi(a)


class DoubleConv(nn.Sequential):
    """The plain U-Net block: two 3x3 convolutions with batch-norm and ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


# --------------------------------------------------------------------------- network


class UNet(nn.Module):
    """U-Net with ``depth`` down-sampling steps; ``arch`` picks enhanced or plain blocks."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.arch not in ("enhanced", "plain"):
            raise ValueError(f"unknown architecture {cfg.arch!r}: use 'enhanced' or 'plain'")
        if cfg.stem_stride not in (1, 2):
            raise ValueError("stem_stride must be 1 or 2")
        self.cfg = cfg
        enhanced = cfg.arch == "enhanced"
        block = ResidualBlock if enhanced else DoubleConv
        widths = [min(cfg.width * 2**i, cfg.max_width) for i in range(cfg.depth + 1)]

        self.stem = nn.Sequential(
            nn.Conv2d(cfg.in_channels, widths[0], 3, stride=cfg.stem_stride, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        self.enc = nn.ModuleList([block(widths[0], widths[0])])
        self.down = nn.ModuleList()
        for i in range(1, cfg.depth + 1):
            self.down.append(nn.MaxPool2d(2))
            self.enc.append(block(widths[i - 1], widths[i]))

        self.gates = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(cfg.depth, 0, -1):
            skip, below = widths[i - 1], widths[i]
            self.gates.append(
                AttentionGate(skip, below, max(skip // 2, 4)) if enhanced else nn.Identity()
            )
            self.dec.append(block(skip + below, skip))
        self.head = nn.Conv2d(widths[0], cfg.num_classes, 1)

    @property
    def stride(self) -> int:
        return self.cfg.stem_stride * 2**self.cfg.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        s = self.stride
        # always pad (by zero when already aligned) so an exported graph has no
        # shape-dependent branch; replicate works for any size, even below the stride
        x = F.pad(x, (0, (-w) % s, 0, (-h) % s), mode="replicate")

        y = self.stem(x)
        skips = []
        for i, enc in enumerate(self.enc):
            if i:
                y = self.down[i - 1](y)
            y = enc(y)
            skips.append(y)
        y = skips.pop()
        for gate, dec in zip(self.gates, self.dec):
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            if isinstance(gate, AttentionGate):
                skip = gate(skip, y)
            y = dec(torch.cat([skip, y], dim=1))
        y = self.head(y)
        if self.cfg.stem_stride != 1:
            y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return y[..., :h, :w]


def build_model(cfg: ModelConfig) -> UNet:
    return UNet(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


DEAD_WEIGHT = 1e-30


def zero_dead(tensors) -> int:
    """Set every value of the floating-point ``tensors`` closer to zero than ``DEAD_WEIGHT``
    (but not zero) to zero, in place; returns how many."""
    n = 0
    with torch.no_grad():
        for t in tensors:
            if t.is_floating_point():
                dead = (t.abs() < DEAD_WEIGHT) & (t != 0)
                k = int(dead.sum())
                if k:
                    t.masked_fill_(dead, 0.0)
                    n += k
    return n


def zero_dead_weights(model: nn.Module) -> int:
    """Zero the dead weights and buffers of ``model`` (:func:`zero_dead`); returns how many.

    Weight decay drives the weights of channels that stopped mattering towards zero until
    they and the activations they make are subnormal (< 1.2e-38), which x86 CPUs compute
    many times slower: the first tile checkpoint had 62% of its weights under 1e-35 and
    trained 6x slower than a fresh network. A weight of 1e-30 next to activations of order
    one changes no float32 output, so zeroing them is exact in practice.
    """
    return zero_dead(list(model.parameters()) + list(model.buffers()))
