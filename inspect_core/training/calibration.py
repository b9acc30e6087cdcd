"""Class prior correction: per-class log-probability offsets fitted on a validation split.

A segmentation network learns the class frequencies of what it was shown. Training crops are
chosen to hold defects (``defect_crop_bias``) and Dice rewards recall on rare classes, so the
network believes defects are far commoner than on the line, and over-calls them: many
defect-free parts rejected. The Bayes-optimal fix for a shifted prior is to reweight the
posterior, p'(c) ∝ p(c) · w_c (Saerens et al., Neural Computation 2002); here log w_c (the
``class_bias``) are fitted directly to the validation mIoU by coordinate ascent over a grid,
the background's offset held at zero (only differences matter). The runtime applies them
(``ModelMeta.class_bias``) after test-time averaging, so confidences stay probabilities.

Two forms are fitted: one offset shared by every class but the first ("defects in general
are over-called": one number, hard to overfit) and one per class. :func:`choose` keeps the
one whose two-fold estimate on held-out val images is higher, and neither unless that beats
the uncalibrated model: on the magnetic-tile val split (131 images, a handful per defect
class) per-class offsets raised the fitted mIoU most and the held-out one least.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRID = np.arange(-4.0, 4.001, 0.25)
BLOCK = 4  # images per block of the two-fold split


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


def fit_shared_bias(px: Pixels, grid: np.ndarray = GRID) -> np.ndarray:
    """One offset for every class but class 0, maximising mIoU on ``px``."""
    k = px.logp.shape[0]

    def shared(g: float) -> np.ndarray:
        b = np.full(k, g, np.float32)
        b[0] = 0.0
        return b

    scores = [(miou(confusion_for(px, shared(g))), -abs(g), g) for g in grid]
    return shared(max(scores)[2])  # ties: the smallest correction


FITS = {"shared": fit_shared_bias, "per_class": fit_class_bias}


@dataclass
class Choice:
    mode: str | None  # None: no correction beats the uncalibrated model on held-out images
    bias: np.ndarray
    before: float  # mIoU of the pixels, uncalibrated
    fitted: dict[str, float]  # mode -> mIoU with offsets fitted on all the pixels
    two_fold: dict[str, float]  # mode -> held-out estimate
    # the chosen mode's offsets fitted on each fold's *other* fold: fold_bias[f] is what the
    # images of fold f are scored with for an estimate none of them was fitted on
    fold_bias: tuple[np.ndarray, ...] = ()


def choose(px: Pixels, image_fold: np.ndarray | None = None) -> Choice:
    """Fit both forms; keep the one with the best held-out estimate, if it beats none.
    ``image_fold``: the fold (0 or 1) of every image, e.g. by group (default: blocks)."""
    k = px.logp.shape[0]
    before = miou(confusion_for(px, np.zeros(k, np.float32)))
    biases = {m: fit(px) for m, fit in FITS.items()}
    fitted = {m: miou(confusion_for(px, b)) for m, b in biases.items()}
    folds = {m: two_fold(px, fit, image_fold) for m, fit in FITS.items()}
    held = {m: v[0] for m, v in folds.items()}
    mode = max(held, key=held.get)
    if held[mode] <= before or fitted[mode] <= before + 0.002:
        return Choice(None, np.zeros(k, np.float32), before, fitted, held)
    return Choice(mode, biases[mode], before, fitted, held, folds[mode][1])


def group_folds(names: list[str]) -> np.ndarray | None:
    """Two folds of whole groups (alternating in name order) for :func:`two_fold_miou`, or
    None with fewer than two groups: a correction fitted on one group and measured on another
    says whether it carries to a new one."""
    order = sorted(set(names))
    if len(order) < 2:
        return None
    return np.array([order.index(g) % 2 for g in names], np.int32)


def image_folds(n_images: int, image_fold: np.ndarray | None = None) -> np.ndarray:
    """The fold (0 or 1) of each of ``n_images`` images: ``image_fold`` where given (by group:
    :func:`group_folds`), else alternating blocks of ``BLOCK`` images in file order."""
    if image_fold is not None:
        return np.asarray(image_fold, np.int32)
    return ((np.arange(n_images) // BLOCK) % 2).astype(np.int32)


def two_fold(
    px: Pixels, fit=fit_class_bias, image_fold: np.ndarray | None = None
) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    """mIoU of biases fitted on half the images and applied to the other half (both ways,
    one pooled confusion matrix): what calibration is worth on images it has not seen; and the
    two biases, the one applied to fold 0 first. The halves alternate in blocks of ``BLOCK``
    images in file order: alternate single images would put neighbouring frames of one video
    (CamVid) on both sides, and first/second half would put whole classes on one side where
    files are named by class (magnetic tile). ``image_fold`` gives each image's fold instead
    (:func:`group_folds`)."""
    n = int(px.image.max()) + 1 if len(px.image) else 0
    fold = image_folds(n, image_fold)[px.image]
    cm, biases = 0, []
    for f in (0, 1):
        test = fold == f
        b = fit(px.subset(~test))
        biases.append(b)
        cm = cm + confusion_for(px.subset(test), b)
    return miou(cm), (biases[0], biases[1])


def two_fold_miou(px: Pixels, fit=fit_class_bias, image_fold: np.ndarray | None = None) -> float:
    """The estimate of :func:`two_fold` alone."""
    return two_fold(px, fit, image_fold)[0]
