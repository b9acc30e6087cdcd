"""Probe of feature sources for a good-only model (issue 24): memory-bank scoring (PatchCore:
3x3-averaged patch features of the good training images, a random subset as the bank, each test
patch's distance to its nearest stored patch; the image score is the largest) on three feature
sources, scored on groups no choice saw.

    python training/anomaly_probe.py --data ../shared/datasets/magnetic-tile --hold-out exp6

- ``random``: the U-Net encoder of the shipped recipes, random weights (the floor);
- ``steel``: the shipped steel model's encoder (another product: no tile defect ever seen);
- ``filters``: a fixed bank of Gaussian-derivative filters at three scales (no learning).

Training images: the good images (all-background masks) of train/ outside the held-out group.
Scored: every image of the held-out group (train and val), good and defective. Prints one JSON
line per source with image AUROC, pixel AUROC, AUPRO and F1 max.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inspect_core.data.detection_metrics import detection_scores  # noqa: E402
from inspect_core.training.unet import ModelConfig, UNet  # noqa: E402

STEEL = ROOT / "plugins/inspect_plugins/industrial/models/steel.pt"
SIZE = 256


def load(data: Path, hold_out: str) -> tuple[list, list]:
    train, test = [], []
    for split in ("train", "val"):
        for img in sorted((data / split / "images").glob("*.jpg")):
            mask = cv2.imread(str(data / split / "masks" / f"{img.stem}.png"), 0)
            group = re.search(r"_(exp\d+)_", img.name)
            g = group.group(1) if group else ""
            item = (cv2.imread(str(img), 0), mask)
            if g == hold_out:
                test.append(item)
            elif split == "train" and not (mask > 0).any():
                train.append(item)
    return train, test


def encoder(weights: str) -> torch.nn.Module:
    cfg = ModelConfig(in_channels=1, num_classes=4, width=32, depth=4, stem_stride=2)
    net = UNet(cfg)
    if weights == "steel":
        net.load_state_dict(torch.load(STEEL, map_location="cpu", weights_only=False)["model"])
    else:
        torch.manual_seed(0)
    return net.eval()


@torch.no_grad()
def unet_features(net: UNet, image: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(cv2.resize(image, (SIZE, SIZE))).float()[None, None] / 255.0
    x = (x - x.mean()) / (x.std() + 1e-6)
    y = net.stem(x)
    feats = []
    for i, enc in enumerate(net.enc[:3]):
        if i:
            y = net.down[i - 1](y)
        y = enc(y)
        if i >= 1:
            feats.append(y)
    size = feats[0].shape[-2:]
    out = torch.cat([F.interpolate(f, size=size, mode="bilinear") for f in feats], 1)
    return F.avg_pool2d(out, 3, 1, 1)[0]  # C x H/4 x W/4


def filter_features(image: np.ndarray) -> torch.Tensor:
    x = cv2.resize(image, (SIZE, SIZE)).astype(np.float32) / 255.0
    x = (x - x.mean()) / (x.std() + 1e-6)
    maps = []
    for sigma in (1.0, 2.0, 4.0):
        g = cv2.GaussianBlur(x, (0, 0), sigma)
        gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
        lap = cv2.Laplacian(g, cv2.CV_32F)
        var = cv2.GaussianBlur((x - g) ** 2, (0, 0), sigma)
        maps += [g, np.hypot(gx, gy), lap, np.sqrt(var)]
    stack = torch.from_numpy(np.stack(maps))[None]
    return F.avg_pool2d(F.avg_pool2d(stack, 4), 3, 1, 1)[0]


def score(source: str, train: list, test: list, keep: float, seed: int) -> dict:
    t0 = time.time()
    feat = (
        filter_features
        if source == "filters"
        else (lambda im, net=encoder(source): unet_features(net, im))
    )
    bank = []
    rng = np.random.default_rng(seed)
    for image, _ in train:
        f = feat(image)
        flat = f.flatten(1).T
        bank.append(flat[rng.random(flat.shape[0]) < keep])
    memory = torch.cat(bank)
    maps, masks = [], []
    for image, mask in test:
        f = feat(image)
        c, h, w = f.shape
        q = f.flatten(1).T
        d = torch.cat([torch.cdist(part, memory).min(1).values for part in q.split(512)])
        amap = d.reshape(1, 1, h, w)
        amap = F.interpolate(amap, size=mask.shape, mode="bilinear")[0, 0].numpy()
        maps.append(cv2.GaussianBlur(amap, (0, 0), 4))
        masks.append(mask)
    s = detection_scores(maps, masks).as_json()
    return {"source": source, "bank": int(memory.shape[0]), "seconds": round(time.time() - t0), **s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--hold-out", default="exp6")
    ap.add_argument("--sources", default="random,steel,filters")
    ap.add_argument("--keep", type=float, default=0.02)
    args = ap.parse_args()
    torch.set_num_threads(1)
    train, test = load(args.data, args.hold_out)
    print(json.dumps({"train_good": len(train), "held_out": len(test), "group": args.hold_out}))
    for source in args.sources.split(","):
        print(json.dumps(score(source, train, test, args.keep, seed=0)), flush=True)


if __name__ == "__main__":
    main()
