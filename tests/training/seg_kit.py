"""Tiny segmentation datasets and checkpoints for the training tests (no training here)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from inspect_core.training.unet import ModelConfig, build_model


def write_dataset(
    root: Path,
    splits: dict[str, list[str] | int],
    classes=("background", "square"),
    channels: int = 1,
    side: int = 48,
    **meta,
) -> Path:
    """``classes.json`` (with ``meta``) and, per split, images with a bright square of class 1
    and their masks; a split is a list of stems or a count (stems 00, 01, ...)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.json").write_text(json.dumps({"classes": list(classes), **meta}))
    rng = np.random.default_rng(0)
    for split, stems in splits.items():
        names = [f"{i:02d}" for i in range(stems)] if isinstance(stems, int) else stems
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for stem in names:
            img = rng.normal(60, 10, (side, side)).clip(0, 255).astype(np.uint8)
            mask = np.zeros((side, side), np.uint8)
            y, x = rng.integers(2, side - 16, 2)
            img[y : y + 14, x : x + 14] = 220
            mask[y : y + 14, x : x + 14] = 1
            if channels == 3:
                img = np.dstack([img, img // 2, 255 - img])
            cv2.imwrite(str(root / split / "images" / f"{stem}.png"), img)
            cv2.imwrite(str(root / split / "masks" / f"{stem}.png"), mask)
    return root


def save_checkpoint(
    path: Path, card_classes: list[str] | None = None, with_config: bool = True, **cfg
) -> torch.nn.Module:
    """A random tiny U-Net saved as ``path`` (.pt) the way training saves ``model.pt``; with
    ``card_classes`` also a card beside it naming its classes."""
    torch.manual_seed(0)
    mcfg = ModelConfig(**{"width": 4, "depth": 2, **cfg})
    model = build_model(mcfg)
    state = {"model": model.state_dict()}
    if with_config:
        state["config"] = mcfg.to_dict()
    torch.save(state, path)
    if card_classes is not None:
        path.with_suffix(".json").write_text(json.dumps({"classes": card_classes}))
    return model
