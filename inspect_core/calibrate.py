"""Class prior correction: per-class log-probability offsets fitted on a validation split.

A segmentation network learns the class frequencies of what it was shown. Training crops are
chosen to hold defects (``defect_crop_bias``) and Dice rewards recall on rare classes, so the
network believes defects are far commoner than on the line, and over-calls them: many
defect-free parts rejected. The Bayes-optimal fix for a shifted prior is to reweight the
posterior, p'(c) ∝ p(c) · w_c (Saerens et al., Neural Computation 2002); here log w_c (the
``class_bias``) are fitted directly to the validation mIoU by coordinate ascent over a grid,
the background's offset held at zero (only differences matter). The runtime applies them
(``ModelMeta.class_bias``) after flip averaging, so confidences stay probabilities.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRID = np.arange(-4.0, 4.001, 0.25)


@dataclass
class Pixels:
    """Log-probabilities (K, N), labels (N,) and image numbers (N,) of validation pixels,
    ignored ones dropped."""
    logp: np.ndarray
    target: np.ndarray
    image: np.ndarray

    @classmethod
    def gather(cls, items, ignore_index: int = 255, step: int = 2) -> Pixels:
        """From (probabilities (K, H, W), mask (H, W)) pairs, every ``step``-th pixel per axis."""
        logs, targets, images = [], [], []
        for i, (probs, mask) in enumerate(items):
            p = probs[:, ::step, ::step]
            m = mask[::step, ::step]
            keep = m != ignore_index
            logs.append(np.log(np.clip(p[:, keep], 1e-7, 1.0)).astype(np.float32))
            targets.append(m[keep].astype(np.int64))
            images.append(np.full(int(keep.sum()), i, np.int32))
        return cls(np.concatenate(logs, axis=1), np.concatenate(targets), np.concatenate(images))

    def subset(self, index: np.ndarray) -> Pixels:
        return Pixels(self.logp[:, index], self.target[index], self.image[index])


def confusion_for(px: Pixels, bias: np.ndarray) -> np.ndarray:
    k = px.logp.shape[0]
    pred = np.argmax(px.logp + bias[:, None].astype(np.float32), axis=0)
    return np.bincount(px.target * k + pred, minlength=k * k).reshape(k, k)


def miou(cm: np.ndarray) -> float:
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    iou = np.where(union > 0, tp / np.maximum(union, 1), 1.0)
    return float(iou.mean())


def fit_class_bias(px: Pixels, passes: int = 2, grid: np.ndarray = GRID) -> np.ndarray:
    """Offsets (K,) maximising mIoU on ``px``; class 0 (background) stays at 0."""
    k = px.logp.shape[0]
    bias = np.zeros(k, np.float32)
    best = miou(confusion_for(px, bias))
    for _ in range(passes):
        changed = False
        for c in range(1, k):
            for g in grid:
                trial = bias.copy()
                trial[c] = g
                s = miou(confusion_for(px, trial))
                if s > best + 1e-6:
                    best, bias, changed = s, trial, True
        if not changed:
            break
    return bias


def two_fold_miou(px: Pixels) -> float:
    """mIoU of biases fitted on half the images and applied to the other half (both ways,
    one pooled confusion matrix): what calibration is worth on images it has not seen."""
    odd = px.image % 2 == 1
    cm = 0
    for fit, test in ((odd, ~odd), (~odd, odd)):
        cm = cm + confusion_for(px.subset(test), fit_class_bias(px.subset(fit)))
    return miou(cm)
