"""Feature extractors of a good-only model (torch): image (N, C, H, W), normalised x/255, in;
patch features (N, D, H/4, W/4), each averaged over its 3x3 neighbourhood, out.

Every extractor first standardises each image (zero mean, unit variance over its pixels), as
``training/anomaly_probe.py`` did: a tile lit brighter than the bank's is not an anomaly. The
input is padded (replicate) to a multiple of :data:`STRIDE`; the caller crops the map back.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from inspect_core.anomaly.sources import FeatureSource
from inspect_core.training.unet import ModelConfig, UNet

STRIDE = 8  # the input is padded to a multiple of this; features come at a quarter of it
FEATURE_STRIDE = 4
RANDOM_CONFIG = ModelConfig(in_channels=1, num_classes=2, width=32, depth=4, stem_stride=2)
SIGMAS = (1.0, 2.0, 4.0)


def standardise(x: torch.Tensor) -> torch.Tensor:
    """Each image of the batch to zero mean and unit variance over its channels and pixels."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = ((x - mean) ** 2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
    return (x - mean) / (std + 1e-6)


def pad_to_stride(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, (-w) % STRIDE, 0, (-h) % STRIDE), mode="replicate")


def neighbourhood(f: torch.Tensor) -> torch.Tensor:
    """Each feature averaged over its 3x3 neighbourhood (PatchCore's local aggregation)."""
    return F.avg_pool2d(F.pad(f, (1, 1, 1, 1), mode="replicate"), 3, 1)


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Gray to RGB by repeating, RGB to gray by the mean."""
    if x.shape[1] == channels:
        return x
    return x.mean(1, keepdim=True) if channels == 1 else x.repeat(1, channels, 1, 1)


class EncoderFeatures(nn.Module):
    """The stem and first three levels of a U-Net encoder; levels 1 and 2, the second
    upsampled to the first, concatenated (at a quarter of the input when the stem strides 2)."""

    def __init__(self, net: UNet):
        super().__init__()
        self.stem, self.enc, self.down = net.stem, net.enc[:3], net.down[:2]
        self.in_channels = net.cfg.in_channels
        self.pool = max(1, FEATURE_STRIDE // (net.cfg.stem_stride * 2))
        cfg = net.cfg
        self.channels = sum(min(cfg.width * 2**i, cfg.max_width) for i in (1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(match_channels(standardise(x), self.in_channels))
        y = self.enc[0](y)
        one = self.enc[1](self.down[0](y))
        two = self.enc[2](self.down[1](one))
        two = F.interpolate(two, size=one.shape[-2:], mode="bilinear", align_corners=False)
        f = torch.cat([one, two], 1)
        if self.pool > 1:
            f = F.avg_pool2d(f, self.pool)
        return neighbourhood(f)


def _gauss(sigma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r = math.ceil(3 * sigma)
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    return g, -t / sigma**2 * g, (t**2 / sigma**4 - 1 / sigma**2) * g


class FilterFeatures(nn.Module):
    """Gaussian-derivative filters at three scales as fixed convolutions: per scale the
    smoothed image, its gradient magnitude, its Laplacian and the local standard deviation;
    pooled to a quarter of the input. Nothing is learned. Every filter is separable: a
    vertical pass (Gaussian, first and second derivative), then a horizontal one."""

    def __init__(self) -> None:
        super().__init__()
        for k, sigma in enumerate(SIGMAS):
            g, d1, d2 = _gauss(sigma)
            n = g.numel()
            vertical = torch.stack([g, d1, d2])[:, None, :, None]  # (3, 1, n, 1)
            horizontal = torch.zeros(4, 3, 1, n)
            horizontal[0, 0, 0] = g  # smoothed
            horizontal[1, 0, 0] = d1  # d/dx
            horizontal[2, 1, 0] = g  # d/dy
            horizontal[3, 0, 0], horizontal[3, 2, 0] = d2, g  # Laplacian
            self.register_buffer(f"vertical{k}", vertical)
            self.register_buffer(f"horizontal{k}", horizontal)
        self.channels = 4 * len(SIGMAS)

    def _blur(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """``x`` smoothed by the Gaussian of scale ``k`` (replicate borders)."""
        v, h = getattr(self, f"vertical{k}")[:1], getattr(self, f"horizontal{k}")[:1, :1]
        r = v.shape[2] // 2
        return F.conv2d(F.conv2d(F.pad(x, (r, r, r, r), mode="replicate"), v), h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = match_channels(standardise(x), 1)
        maps = []
        for k in range(len(SIGMAS)):
            v, h = getattr(self, f"vertical{k}"), getattr(self, f"horizontal{k}")
            r = v.shape[2] // 2
            y = F.conv2d(F.conv2d(F.pad(x, (r, r, r, r), mode="replicate"), v), h)
            g, gx, gy, lap = y[:, 0:1], y[:, 1:2], y[:, 2:3], y[:, 3:4]
            var = self._blur((x - g) ** 2, k)
            maps += [g, (gx**2 + gy**2 + 1e-12).sqrt(), lap, (var + 1e-12).sqrt()]
        f = F.avg_pool2d(torch.cat(maps, 1), FEATURE_STRIDE)
        return neighbourhood(f)


def build_features(source: FeatureSource, seed: int = 0) -> nn.Module:
    """The extractor of ``source`` in eval mode, its weights frozen; ``.channels`` is its
    feature depth."""
    if source.kind == "filters":
        module: nn.Module = FilterFeatures()
    else:
        if source.kind == "encoder" and source.path is not None:
            ckpt = torch.load(source.path, map_location="cpu", weights_only=False)
            net = UNet(ModelConfig.from_dict(ckpt["config"]))
            net.load_state_dict(ckpt["model"])
        else:
            torch.manual_seed(seed)
            net = UNet(RANDOM_CONFIG)
        module = EncoderFeatures(net)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module
