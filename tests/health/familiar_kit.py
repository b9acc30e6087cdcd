"""Images of "the line" and of another product, and a tiny exported U-Net with the features
output and a familiarity fitted on line images, for the familiarity tests (issue 25)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from conftest import make_tiny_model

from inspect_core.cards import sha256_file
from inspect_core.health.familiarity import familiarity_path, fit, save
from inspect_core.health.familiarity_graph import add_features
from inspect_core.health.familiarity_run import FeatureRun


def line_image(rng: np.random.Generator, side: int = 64) -> np.ndarray:
    """An image of "the line": mid-gray, soft texture, a few darker marks."""
    img = rng.normal(110, 12, (side, side)).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 1.0)
    for _ in range(rng.integers(1, 4)):
        y, x = rng.integers(0, side - 10, 2)
        img[y : y + 8, x : x + 8] -= 30
    return img.clip(0, 255).astype(np.uint8)


def other_product(rng: np.random.Generator, side: int = 64) -> np.ndarray:
    """Another product: bright, hard-edged stripes."""
    stripes = ((np.arange(side) // rng.integers(3, 6)) % 2) * 150 + 90
    img = np.tile(stripes, (side, 1)).astype(np.float32) + rng.normal(0, 5, (side, side))
    return img.clip(0, 255).astype(np.uint8)


def line_dataset(root: Path, train: int = 60, val: int = 30, side: int = 64) -> Path:
    """A dataset folder of line images (``side`` px) with empty masks: ``train`` and ``val``
    splits."""
    rng = np.random.default_rng(3)
    (root / "classes.json").parent.mkdir(parents=True)
    (root / "classes.json").write_text(json.dumps({"classes": ["background", "scratch", "dent"]}))
    for split, n in (("train", train), ("val", val)):
        for sub in ("images", "masks"):
            (root / split / sub).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(root / split / "images" / f"{i:03d}.png"), line_image(rng, side))
            mask = np.zeros((side, side), np.uint8)
            cv2.imwrite(str(root / split / "masks" / f"{i:03d}.png"), mask)
    return root


def familiar_model(folder: Path, seed: int = 0) -> Path:
    """``folder/model.onnx``: a tiny U-Net with the ``features`` output (the plain export is
    ``folder/plain.onnx``) and its familiarity fitted on 150 line images, the threshold set on
    100 others, saved beside it as the runtime looks for it."""
    plain = make_tiny_model(folder / "plain.onnx")
    model = folder / "model.onnx"
    add_features(plain, model)
    run = FeatureRun(model, threads=1)
    rng = np.random.default_rng(seed)
    train = np.stack([run.image_features(line_image(rng)) for _ in range(150)])
    held = np.stack([run.image_features(line_image(rng)) for _ in range(100)])
    save(fit(train, held, model_sha256=sha256_file(model)), familiarity_path(model))
    return model
