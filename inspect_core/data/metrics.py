"""Segmentation metrics from one confusion matrix accumulated over a whole split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def confusion(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int = 255
) -> np.ndarray:
    """Confusion matrix ``cm[true, pred]`` over the pixels whose target is not ignored."""
    valid = target != ignore_index
    t = target[valid].astype(np.int64)
    p = pred[valid].astype(np.int64)
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


@dataclass
class SegmentationScores:
    classes: list[str]
    cm: np.ndarray = None  # type: ignore[assignment]
    images: int = 0
    # image level "has a defect": [true positive, false negative, false positive, true negative]
    image_counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])

    def __post_init__(self) -> None:
        if self.cm is None:
            self.cm = np.zeros((len(self.classes),) * 2, np.int64)

    def update(self, pred: np.ndarray, target: np.ndarray, ignore_index: int = 255) -> None:
        self.cm += confusion(pred, target, len(self.classes), ignore_index)
        self.images += 1
        valid = target != ignore_index
        true_defect = bool((target[valid] > 0).any())
        pred_defect = bool((pred[valid] > 0).any())  # ignored pixels count for neither
        idx = {(True, True): 0, (True, False): 1, (False, True): 2, (False, False): 3}
        self.image_counts[idx[(true_defect, pred_defect)]] += 1

    def per_class(self) -> dict[str, dict[str, float]]:
        cm = self.cm.astype(np.float64)
        tp = np.diag(cm)
        fp = cm.sum(0) - tp
        fn = cm.sum(1) - tp
        out = {}
        for i, name in enumerate(self.classes):
            out[name] = {
                "dice": _ratio(2 * tp[i], 2 * tp[i] + fp[i] + fn[i]),
                "iou": _ratio(tp[i], tp[i] + fp[i] + fn[i]),
                "precision": _ratio(tp[i], tp[i] + fp[i]),
                "recall": _ratio(tp[i], tp[i] + fn[i]),
            }
        return out

    def summary(self) -> dict[str, Any]:
        pc = self.per_class()
        ious = [v["iou"] for v in pc.values()]
        dices = [v["dice"] for n, v in pc.items() if n != self.classes[0]]
        tp, fn, fp, tn = self.image_counts
        total = self.cm.sum()
        return {
            "miou": float(np.mean(ious)),
            "mean_dice": float(np.mean(dices)) if dices else float("nan"),
            "pixel_accuracy": _ratio(np.trace(self.cm), total),
            "per_class": pc,
            "image_recall": _ratio(tp, tp + fn) if tp + fn else None,
            "false_reject_rate": _ratio(fp, fp + tn) if fp + tn else None,
            "images": self.images,
            **_undefined(tp + fn, fp + tn),
        }


# image-level rates that have no image to count, and why (they are None then, not 0 or 1)
UNDEFINED = {
    "image_recall": "no image of the split has a defect in its mask",
    "false_reject_rate": "no image of the split is defect-free (every mask has a defect)",
}


def _undefined(defective: int, clean: int) -> dict[str, dict[str, str]]:
    """``{"undefined": {rate: reason}}`` for the image-level rates with no image to count."""
    why = {
        k: UNDEFINED[k]
        for k, n in (("image_recall", defective), ("false_reject_rate", clean))
        if not n
    }
    return {"undefined": why} if why else {}


def _ratio(a: float, b: float, empty: float = 1.0) -> float:
    """a / b; 0/0 is ``empty`` (1.0: a class absent and never predicted is scored perfect)."""
    return float(a / b) if b else empty
