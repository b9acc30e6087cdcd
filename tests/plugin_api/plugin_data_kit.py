"""A tiny synthetic colour dataset with thin cracks, and an oracle model for it.

Images are gray-brown noise; a crack is a 2 px wide band painted pure red, a stain a disc
painted pure green, so :func:`oracle_probabilities` reads the true mask back from the pixels:
a model that is always right, for the tests of sample picking.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

CLASSES = ["background", "crack", "stain"]
RED, GREEN = (255, 0, 0), (0, 255, 0)
# the length of the crack in image i of each split (the 9th and 10th images have none)
CRACK_LENGTHS = [12, 20, 30, 40, 16, 24, 36, 28]


def _image(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.normal((140, 120, 100), 8, (size, size, 3))
    return base.clip(0, 200).astype(np.uint8)  # never pure red or green


def make_dataset(root: Path, stains: bool = True, thick: bool = False, size: int = 64) -> Path:
    """``train`` and ``val`` splits: per split 8 images with one crack each (2 px wide, the
    lengths of :data:`CRACK_LENGTHS`; with ``thick``, 10 px wide instead), 4 of them with a
    stain of radius 6, and 2 defect-free images."""
    rng = np.random.default_rng(0)
    (root).mkdir(parents=True, exist_ok=True)
    (root / "classes.json").write_text(json.dumps({"classes": CLASSES}))
    width = 10 if thick else 2
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for i in range(10):
            img, mask = _image(rng, size), np.zeros((size, size), np.uint8)
            if i < 8:
                length, at = CRACK_LENGTHS[i], 5 + 3 * i
                rows, cols = slice(at, at + width), slice(4, 4 + length)
                if i % 2:  # vertical
                    rows, cols = slice(at, at + length), slice(40, 40 + width)
                img[rows, cols], mask[rows, cols] = RED, 1
                if stains and i < 4:
                    cv2.circle(mask, (50, 50), 6, 2, -1)
                    img[mask == 2] = GREEN
            cv2.imwrite(str(root / split / "images" / f"{split}{i}.png"), img[..., ::-1])
            cv2.imwrite(str(root / split / "masks" / f"{split}{i}.png"), mask)
    return root


def oracle_probabilities(frame: np.ndarray) -> np.ndarray:
    """Class probabilities read from the painted colours: exactly the true mask."""
    labels = np.zeros(frame.shape[:2], np.uint8)
    if frame.ndim == 3:
        labels[np.all(frame == RED, axis=-1)] = 1
        labels[np.all(frame == GREEN, axis=-1)] = 2
    return np.eye(len(CLASSES), dtype=np.float32)[labels].transpose(2, 0, 1).copy()


def write_card(model: Path, **architecture) -> Path:
    """A model card beside ``model`` (sha256, classes, channels, ``architecture``)."""
    import hashlib

    from inspect_core.runtime.onnx_model import OnnxModel

    m = OnnxModel(model, verify=False)
    card = {
        "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "classes": m.classes,
        "channels": m.meta.channels,
        "architecture": {"in_channels": m.meta.channels, **architecture},
    }
    path = model.with_suffix(".json")
    path.write_text(json.dumps(card))
    return path


def carded_copy(model: Path, folder: Path) -> Path:
    """A copy of ``model`` in ``folder`` with a card beside it, as a plugin's model must have."""
    import shutil

    path = folder / model.name
    shutil.copy(model, path)
    write_card(path, width=4, depth=2, stem_stride=1)
    return path
