"""The good-only model as one network (torch): features, nearest-neighbour distance to the
memory bank, smoothing, upsampling and the two-class logits, all inside the graph that is
exported to ONNX, so the runtime runs it as any segmentation model.

Outputs: ``logits`` (N, 2, H, W) = ``[0, (score - threshold) / scale]``: softmax and argmax
turn ``score > threshold`` into class 1, ``anomaly``; ``anomaly_map`` (N, 1, H, W), the score:
the distance of each pixel's patch feature to its nearest patch of the bank, smoothed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from inspect_core.training.anomaly.features import FEATURE_STRIDE, pad_to_stride


def gaussian_kernel(sigma: float) -> torch.Tensor:
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)[None, None]


class AnomalyNet(nn.Module):
    """``features`` (an extractor of :mod:`~inspect_core.training.anomaly.features`), the memory
    ``bank`` (M, D) of standardised patch features, the per-channel ``center`` and ``spread``
    that standardise them, and the threshold and scale of the logits."""

    bank: torch.Tensor
    bank_sq: torch.Tensor
    center: torch.Tensor
    spread: torch.Tensor
    blur: torch.Tensor
    threshold: torch.Tensor
    scale: torch.Tensor

    def __init__(
        self,
        features: nn.Module,
        bank: torch.Tensor,
        center: torch.Tensor,
        spread: torch.Tensor,
        blur_sigma: float = 1.0,
        chunk: int = 2048,
    ):
        super().__init__()
        self.features = features
        self.register_buffer("bank", bank.contiguous())
        self.register_buffer("bank_sq", (bank * bank).sum(1))
        self.register_buffer("center", center.reshape(1, -1, 1, 1))
        self.register_buffer("spread", spread.reshape(1, -1, 1, 1))
        self.register_buffer("blur", gaussian_kernel(blur_sigma))
        self.register_buffer("threshold", torch.tensor(0.0))
        self.register_buffer("scale", torch.tensor(1.0))
        self.chunk = chunk

    def set_threshold(self, value: float, scale: float) -> None:
        self.threshold.fill_(value)
        self.scale.fill_(scale)

    def nearest(self, q: torch.Tensor) -> torch.Tensor:
        """Distance of each row of ``q`` (P, D) to its nearest bank row, by
        ``|q|^2 - 2 q.m + |m|^2`` over bank chunks (bounded memory), min, square root."""
        qq = (q * q).sum(1, keepdim=True)
        best = None
        bank, bank_sq = self.bank, self.bank_sq
        for start in range(0, bank.shape[0], self.chunk):
            part, part_sq = bank[start : start + self.chunk], bank_sq[start : start + self.chunk]
            d = (qq - 2.0 * q @ part.T + part_sq[None]).min(1).values
            best = d if best is None else torch.minimum(best, d)
        assert best is not None
        return best.clamp_min(0.0).sqrt()

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """The anomaly map (N, 1, H, W) of a normalised batch."""
        h, w = x.shape[-2:]
        f = self.features(pad_to_stride(x))
        f = (f - self.center) / self.spread
        n, d, fh, fw = f.shape
        q = f.permute(0, 2, 3, 1).reshape(-1, d)
        s = self.nearest(q).reshape(n, 1, fh, fw)
        r = self.blur.shape[-1] // 2
        s = F.conv2d(F.pad(s, (r, r, r, r), mode="replicate"), self.blur)
        # the padded input is FEATURE_STRIDE times the feature map, exactly
        s = F.interpolate(s, scale_factor=float(FEATURE_STRIDE), mode="bilinear")
        return s[..., :h, :w]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.score(x)
        logit = (s - self.threshold) / self.scale
        return torch.cat([torch.zeros_like(logit), logit], 1), s
