"""What the training loop reads: the training images, decoded once and augmented on every
access (:class:`SegTrainSet`), and their statistics for the normalisation (needs torch)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from inspect_core.data.datasets import Dataset, to_channels
from inspect_core.runtime.onnx_model import normalize  # the one normalisation, as inference


class SegTrainSet(TorchDataset):
    """Decodes each image once and keeps it in memory; augments on every access."""

    def __init__(self, ds: Dataset, channels: int, aug, mean: float, std: float):
        self.ds, self.channels, self.aug = ds, channels, aug
        self.mean, self.std = mean, std
        self.cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        if i not in self.cache:
            img, mask = self.ds.load(i)
            self.cache[i] = (to_channels(img, self.channels), mask)
        img, mask = self.cache[i]
        if self.aug is not None:
            r = self.aug(image=img, mask=mask)
            img, mask = r["image"], r["mask"]
        x = normalize(img, self.mean, self.std)
        return torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(mask)).long()


@dataclass(frozen=True)
class ImageStats:
    mean: float  # of the pixel values / 255, one value for all channels (the normalisation)
    std: float
    short_side: int  # the median shorter side in pixels (what the training crop is fitted to)


def dataset_stats(ds: Dataset, channels: int, n: int = 200) -> ImageStats:
    """Pixel mean and std and the median shorter side of the training images, from a
    subsample of ``n``."""
    idx = np.linspace(0, len(ds) - 1, min(n, len(ds))).astype(int)
    vals, sides = [], []
    for i in idx:
        img = to_channels(ds.load(int(i))[0], channels)
        vals.append(img.astype(np.float32).ravel()[::17] / 255)
        sides.append(min(img.shape[:2]))
    v = np.concatenate(vals)
    return ImageStats(float(v.mean()), float(max(v.std(), 1e-3)), int(np.median(sides)))


RARE_SHARE = 0.03  # a class with fewer of the labelled pixels is rare (rare_crop_bias)


def common_classes(ds: Dataset, n: int = 200) -> list[int]:
    """The classes holding at least ``RARE_SHARE`` of the labelled pixels of (a subsample of
    ``n``) training masks: a rare-class crop must hold some class not in this list."""
    idx = np.linspace(0, len(ds) - 1, min(n, len(ds))).astype(int)
    counts = np.zeros(len(ds.classes), np.int64)
    for i in idx:
        mask = ds.load(int(i))[1]
        counts += np.bincount(mask[mask != ds.ignore_index].ravel(), minlength=len(counts))[
            : len(counts)
        ]
    share = counts / max(1, counts.sum())
    return [c for c in range(len(counts)) if share[c] >= RARE_SHARE]


def worker_init(worker_id: int) -> None:
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)
    # each worker holds a copy of the augmentation: give each its own stream
    info = torch.utils.data.get_worker_info()
    aug = getattr(info.dataset, "aug", None) if info is not None else None
    if aug is not None:
        aug.set_random_state(np.random.default_rng(s), random.Random(s))
