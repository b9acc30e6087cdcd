"""A good-only network trained from scratch (torch): a U-Net learns to find synthetic defects
(:mod:`inspect_core.anomaly.synthetic`) pasted on crops of the good bank images, as DRAEM's
discriminative network does. Its anomaly map is the anomaly logit minus the background logit,
smoothed; no memory bank and no nearest-neighbour search, so it runs as fast as a recipe's
U-Net of the same width.

Nothing it learns from is a real defect: the bank images are good, and every defect is made
from them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from inspect_core.anomaly.synthetic import add_defect
from inspect_core.data.datasets import Dataset, to_channels
from inspect_core.training.anomaly.features import standardise
from inspect_core.training.anomaly.network import gaussian_kernel
from inspect_core.training.losses import dice_ce_loss
from inspect_core.training.unet import ModelConfig, UNet

Log = Callable[[str], None]
DEFECT_SHARE = 0.5  # of the training crops that carry a synthetic defect


@dataclass(frozen=True)
class NetworkInfo:
    """What the card says of a network trained on synthetic defects."""

    config: dict[str, int | str]
    crop: int
    steps: int
    minutes: float
    final_loss: float
    defect_share: float = DEFECT_SHARE

    def summary(self) -> str:
        return (
            f"synthetic defects: {self.steps} steps in {self.minutes} min, "
            f"loss {self.final_loss:.4f}"
        )

    def architecture(self, source: str) -> dict[str, Any]:
        return {"kind": "unet on synthetic defects", "source": source, **asdict(self)}


def as_hwc(img: np.ndarray) -> np.ndarray:
    """(H, W) gray as (H, W, 1); (H, W, C) as it is."""
    return img[..., None] if img.ndim == 2 else img


class SyntheticSet(TorchDataset[tuple[torch.Tensor, torch.Tensor]]):
    """Random crops of the good images (flipped, turned), half of them with one synthetic
    defect; ``(x/255 (C, S, S), mask (S, S))`` with 1 on the defect."""

    def __init__(self, ds: Dataset, crop: int, steps: int, seed: int):
        self.images = [as_hwc(to_channels(ds.load(i)[0], ds.channels)) for i in range(len(ds))]
        self.crop, self.steps, self.seed = crop, steps, seed

    def __len__(self) -> int:
        return self.steps

    def _crop(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        s = self.crop
        h, w = img.shape[:2]
        if h < s or w < s:
            img = np.pad(img, ((0, max(0, s - h)), (0, max(0, s - w)), (0, 0)), mode="reflect")
            h, w = img.shape[:2]
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        out = img[y : y + s, x : x + s]
        if rng.random() < 0.5:
            out = out[:, ::-1]
        if rng.random() < 0.5:
            out = out[::-1]
        return np.ascontiguousarray(np.rot90(out, int(rng.integers(0, 4))))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, i, torch.initial_seed() % 2**31))
        img = self._crop(self.images[int(rng.integers(len(self.images)))], rng)
        mask = np.zeros(img.shape[:2], np.uint8)
        if rng.random() < DEFECT_SHARE:
            donor = self.images[int(rng.integers(len(self.images)))]
            made = add_defect(img, donor, rng)
            img, mask = made.image, made.mask
        x = torch.from_numpy(img.transpose(2, 0, 1).astype(np.float32) / 255.0)
        return x, torch.from_numpy(mask.astype(np.int64))


class SyntheticNet(nn.Module):
    """The trained U-Net as a good-only model: each image standardised, the U-Net's anomaly
    minus background logit smoothed as the map; outputs as :class:`~.network.AnomalyNet`'s:
    ``logits`` ``[0, (map - threshold) / scale]`` and ``anomaly_map``."""

    blur: torch.Tensor
    threshold: torch.Tensor
    scale: torch.Tensor

    def __init__(self, unet: UNet, blur_sigma: float = 2.0):
        super().__init__()
        self.unet = unet
        self.register_buffer("blur", gaussian_kernel(blur_sigma))
        self.register_buffer("threshold", torch.tensor(0.0))
        self.register_buffer("scale", torch.tensor(1.0))

    def set_threshold(self, value: float, scale: float) -> None:
        self.threshold.fill_(value)
        self.scale.fill_(scale)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.unet(standardise(x))
        s = logits[:, 1:2] - logits[:, 0:1]
        r = self.blur.shape[-1] // 2
        return F.conv2d(F.pad(s, (r, r, r, r), mode="replicate"), self.blur)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.score(x)
        logit = (s - self.threshold) / self.scale
        return torch.cat([torch.zeros_like(logit), logit], 1), s


def train_synthetic(
    bank: Dataset,
    width: int,
    crop: int,
    budget: tuple[float, int | None],
    seed: int,
    log: Log,
    batch: int = 8,
    lr: float = 2e-3,
) -> tuple[SyntheticNet, NetworkInfo]:
    """Train a U-Net of ``width`` on synthetic defects over ``bank``'s good images; returns it
    as a :class:`SyntheticNet`. ``budget``: (minutes, steps): the cosine schedule runs over
    the steps when they are given (the same run on a busy or an idle machine; the minutes
    still stop it), else over the clock."""
    minutes, steps = budget
    torch.manual_seed(seed)
    cfg = ModelConfig(in_channels=bank.channels, num_classes=2, width=width, depth=4, stem_stride=2)
    unet = UNet(cfg)
    data = SyntheticSet(bank, crop, (steps or 1_000_000) * batch, seed)
    loader = DataLoader(data, batch_size=batch, num_workers=0)
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=1e-4)
    started = time.time()
    unet.train()
    step, running = 0, math.nan
    for x, y in loader:
        clock = (time.time() - started) / (minutes * 60.0)
        if clock >= 1.0:
            break
        done = step / steps if steps else clock
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * done)) * min(1.0, (step + 1) / 50)
        loss = dice_ce_loss(unet(standardise(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        value = float(loss.detach())
        running = value if math.isnan(running) else 0.98 * running + 0.02 * value
        step += 1
        if step % 100 == 0:
            log(f"synthetic defects: step {step}, loss {running:.4f}, {done:.0%} done")
    unet.eval()
    info = NetworkInfo(cfg.to_dict(), crop, step, round((time.time() - started) / 60, 2), running)
    return SyntheticNet(unet), info
