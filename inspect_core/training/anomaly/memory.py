"""The memory bank (torch): patch features of the good bank images, standardised per channel,
thinned by greedy coreset selection (PatchCore; anomalib's ``KCenterGreedy``).

Every bank image gives an equal share of a pool of at most ``pool_size`` patches (drawn at
random, seeded); k-center greedy on a random projection of the pool then keeps ``bank_size``
of them: each step adds the patch farthest from those kept, so rare good textures stay in the
bank and near-duplicates of common ones do not crowd it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from inspect_core.data.datasets import Dataset, to_channels
from inspect_core.runtime.onnx_model import normalize
from inspect_core.training.anomaly.features import FEATURE_STRIDE, pad_to_stride

PROJECTION = 128  # dimensions of the random projection the coreset is chosen on

Log = Callable[[str], None]


@dataclass(frozen=True)
class Bank:
    """The bank (M, D) of standardised patch features, and the per-channel ``center`` and
    ``spread`` that standardised them."""

    patches: torch.Tensor
    center: torch.Tensor
    spread: torch.Tensor
    pool: int


def prepare(img: np.ndarray, channels: int) -> torch.Tensor:
    """A uint8 image as the runtime hands it to the network: (1, C, H, W), x/255."""
    return torch.from_numpy(normalize(to_channels(img, channels), 0.0, 1.0))[None]


@torch.no_grad()
def image_features(features: nn.Module, img: np.ndarray, channels: int) -> torch.Tensor:
    """(D, h, w) patch features of one image, cropped to the image (no padding's patches)."""
    x = prepare(img, channels)
    f: torch.Tensor = features(pad_to_stride(x))[0]
    h, w = -(-x.shape[-2] // FEATURE_STRIDE), -(-x.shape[-1] // FEATURE_STRIDE)
    return f[:, :h, :w]


def patch_pool(features: nn.Module, ds: Dataset, pool_size: int, seed: int) -> torch.Tensor:
    """At most ``pool_size`` patch features (P, D), an equal share from every image of
    ``ds`` drawn at random."""
    rng = np.random.default_rng(seed)
    share = max(1, pool_size // max(1, len(ds)))
    parts = []
    for i in range(len(ds)):
        img, _ = ds.load(i)
        f = image_features(features, img, ds.channels)
        flat = f.flatten(1).T
        if flat.shape[0] > share:
            flat = flat[torch.from_numpy(rng.choice(flat.shape[0], share, replace=False))]
        parts.append(flat)
    return torch.cat(parts)


@torch.no_grad()
def greedy_coreset(pool: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Indices of ``k`` rows of ``pool`` chosen by k-center greedy on a random projection
    to :data:`PROJECTION` dimensions (all rows when there are no more than ``k``)."""
    n, d = pool.shape
    if n <= k:
        return torch.arange(n)
    g = torch.Generator().manual_seed(seed)
    z = pool
    if d > PROJECTION:
        z = pool @ (torch.randn(d, PROJECTION, generator=g) / PROJECTION**0.5)
    zz = (z * z).sum(1)
    chosen = torch.empty(k, dtype=torch.long)
    chosen[0] = int(torch.randint(n, (1,), generator=g))
    nearest = torch.full((n,), float("inf"))
    for i in range(k):
        if i:
            chosen[i] = torch.argmax(nearest)
        c = z[chosen[i]]
        d2 = zz - 2.0 * (z @ c) + float(c @ c)
        torch.minimum(nearest, d2, out=nearest)
    return chosen


def build_bank(
    features: nn.Module, ds: Dataset, bank_size: int, pool_size: int, seed: int, log: Log
) -> Bank:
    """The :class:`Bank` of the good images ``ds``."""
    pool = patch_pool(features, ds, pool_size, seed)
    center = pool.mean(0)
    spread = pool.std(0)
    # a channel (nearly) constant on good images must not turn noise into distance
    spread = spread.clamp_min(0.1 * float(spread.median()) + 1e-6)
    pool = (pool - center) / spread
    log(f"patch pool: {pool.shape[0]} patches of {pool.shape[1]} features from {len(ds)} images")
    keep = greedy_coreset(pool, bank_size, seed)
    return Bank(pool[keep].contiguous(), center, spread, int(pool.shape[0]))
