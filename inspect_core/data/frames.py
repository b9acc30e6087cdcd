"""A dataset image and its mask in the frame a recipe's model sees (after its preprocessing)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from inspect_core.errors import DataError


def model_frame(
    img: np.ndarray, mask: np.ndarray, preprocess: Callable[[np.ndarray], np.ndarray], path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """The preprocessed image and its mask at the same size; a preprocessing that does not
    just scale (a crop) cannot be evaluated against the dataset's masks."""
    out = preprocess(img)
    (h, w), (oh, ow) = img.shape[:2], out.shape[:2]
    if (oh, ow) == (h, w):
        return out, mask
    if abs(ow * h - oh * w) > max(h, w):  # more than rounding: not a plain resize
        raise DataError(
            f"{path}: the recipe's preprocessing turns {w}x{h} into {ow}x{oh}, not a "
            "scaling, so the masks cannot follow; evaluate the bare model instead "
            "(--model FILE.onnx)"
        )
    return out, cv2.resize(mask, (ow, oh), interpolation=cv2.INTER_NEAREST)
