"""Small generated datasets for the good-only model's tests: good = a smooth noise texture,
defect = the same texture with a bright blob (its mask). Nothing real is trained on."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

SIZES = ((48, 48), (48, 56), (56, 48))


def texture(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    noise = rng.normal(0.0, 1.0, size).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 1.0)
    return np.clip(120 + 15 * smooth / smooth.std(), 0, 255).astype(np.uint8)


def blob(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``img`` with a bright disc of radius 5 away from the border, and its mask (1 inside)."""
    h, w = img.shape
    cy, cx = int(rng.integers(14, h - 14)), int(rng.integers(14, w - 14))
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, (cx, cy), 5, 1, -1)
    out = img.copy()
    out[mask > 0] = 230
    return out, mask


def write(root: Path, split: str, stem: str, img: np.ndarray, mask: np.ndarray) -> None:
    (root / split / "images").mkdir(parents=True, exist_ok=True)
    (root / split / "masks").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / split / "images" / f"{stem}.png"), img)
    cv2.imwrite(str(root / split / "masks" / f"{stem}.png"), mask)


def make_dataset(
    root: Path, name: str = "texture", groups: int = 4, good: int = 12, defects: int = 4
) -> Path:
    """A shared-layout dataset at ``root``: ``groups`` groups (``_gN_`` in each stem, the
    classes.json pattern), each with ``good`` good and ``defects`` blob images in train/."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    meta = {"name": name, "classes": ["background", "blob"], "ignore_index": 255}
    if groups:
        meta["groups"] = "_(g\\d+)_"
    (root / "classes.json").write_text(json.dumps(meta))
    for g in range(max(groups, 1)):
        for i in range(good + defects):
            img = texture(rng, SIZES[i % len(SIZES)])
            mask = np.zeros(img.shape, np.uint8)
            if i >= good:
                img, mask = blob(img, rng)
            write(root, "train", f"tex_g{g}_{i:03d}", img, mask)
    return root


def make_mvtec(root: Path, good: int = 6, defects: int = 2) -> Path:
    """An MVTec AD layout at ``root``: train/good, test/good, test/blob with ground_truth."""
    rng = np.random.default_rng(1)
    for folder, n in (("train/good", good), ("test/good", 2), ("test/blob", defects)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = texture(rng, (48, 48))
            if folder == "test/blob":
                img, mask = blob(img, rng)
                (root / "ground_truth" / "blob").mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(root / "ground_truth" / "blob" / f"{i:03d}_mask.png"), mask * 255)
            cv2.imwrite(str(root / folder / f"{i:03d}.png"), img)
    return root


def make_encoder(path: Path, dataset: str) -> Path:
    """A tiny U-Net checkpoint as ``inspect train`` saves one (``model`` and ``config``) with
    a card beside it saying it was trained on ``dataset``."""
    import torch

    from inspect_core.training.unet import ModelConfig, UNet

    torch.manual_seed(0)
    cfg = ModelConfig(in_channels=1, num_classes=2, width=4, depth=2, stem_stride=2)
    torch.save({"model": UNet(cfg).state_dict(), "config": cfg.to_dict()}, path)
    card = {"sha256": "0" * 64, "dataset": {"name": dataset, "path": f"../data/{dataset}"}}
    path.with_suffix(".json").write_text(json.dumps(card))
    return path
