"""Preprocessing steps a recipe can declare (``preprocess = [{type = "resize", width = 480}]``).

Each step is a callable ``uint8 image -> uint8 image`` applied before the model's own
normalisation. Plugins may also hand a recipe any Python callable instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from inspect_core.params import construct, parse


@dataclass
class Resize:
    """Scale so the width is ``width`` (or the longer side is ``max_side``), keeping aspect."""

    width: int = 0
    max_side: int = 0

    def __post_init__(self) -> None:
        for k in ("width", "max_side"):
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"resize: {k} must be a whole number of pixels >= 0, got {v!r}")

    def __call__(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        if self.width:
            f = self.width / w
        elif self.max_side:
            f = min(1.0, self.max_side / max(h, w))
        else:
            return img
        if abs(f - 1) < 1e-6:
            return img
        interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
        return cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=interp)


@dataclass
class Clahe:
    """Contrast-limited adaptive histogram equalisation (gray, or the L channel of colour)."""

    clip: float = 2.0
    grid: int = 8

    def __post_init__(self) -> None:
        if not isinstance(self.clip, (int, float)) or self.clip <= 0:
            raise ValueError(f"clahe: clip must be a number > 0, got {self.clip!r}")
        if not isinstance(self.grid, int) or self.grid < 1:
            raise ValueError(f"clahe: grid must be a whole number >= 1, got {self.grid!r}")

    def __call__(self, img: np.ndarray) -> np.ndarray:
        op = cv2.createCLAHE(self.clip, (self.grid, self.grid))
        if img.ndim == 2:
            return op.apply(img)
        lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)
        lab[..., 0] = op.apply(lab[..., 0])
        return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


Step = Callable[[np.ndarray], np.ndarray]  # uint8 image -> uint8 image


@dataclass
class Chain:
    steps: list[Step]

    def __call__(self, img: np.ndarray) -> np.ndarray:
        for s in self.steps:
            img = s(img)
        return img


PREPROCESS_TYPES: dict[str, Callable[..., Step]] = {"resize": Resize, "clahe": Clahe}


def build_preprocess(spec: list[dict[str, Any]]) -> Chain:
    """Steps from a recipe, e.g. ``[{"type": "clahe", "clip": 2.0}, {"type": "resize", ...}]``."""
    steps: list[Step] = []
    for n, table in enumerate(spec):
        kind, params = parse(n, table, PREPROCESS_TYPES, "preprocess", "preprocessing step")
        steps.append(construct(PREPROCESS_TYPES[kind], params, f"preprocess[{n}] ({kind})"))
    return Chain(steps)
