"""Detection scores of an anomaly map (or of a segmentation model's 1 - P(background)), as the
field reports them (anomalib's metrics), so a good-only model and a segmentation model compare
on the same images:

- ``image_auroc``: ROC area of the image scores (an image is defective when its mask holds any
  defect pixel);
- ``pixel_auroc``: ROC area of the pixel scores over every labelled pixel;
- ``aupro``: the per-region overlap (the mean, over the defect regions, of the share of each
  region found) against the false positive rate of the good pixels, integrated up to a false
  positive rate of 0.3 and divided by 0.3 (Bergmann et al., MVTec AD, IJCV 2021);
- ``f1_max``: the best F1 of the image decision over every threshold.

Every curve is taken over every distinct score (ties form one step, as sklearn and anomalib do),
in numpy alone. Pixels marked ``ignore`` count nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

AUPRO_FPR_LIMIT = 0.3


@dataclass(frozen=True)
class DetectionScores:
    """The four scores; a score a set of images cannot give (no defect, or no good image) is
    ``None``, never a number that looks measured."""

    image_auroc: float | None
    pixel_auroc: float | None
    aupro: float | None
    f1_max: float | None
    images: int
    defective_images: int

    def as_json(self) -> dict[str, float | int | None]:
        return {
            "image_auroc": self.image_auroc,
            "pixel_auroc": self.pixel_auroc,
            "aupro": self.aupro,
            "f1_max": self.f1_max,
            "images": self.images,
            "defective_images": self.defective_images,
        }


def _steps(scores: np.ndarray, weights: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    """The cumulative sums of each of ``weights`` over the scores taken from the highest down,
    one value per distinct score (the last of each run of ties), with a leading 0."""
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    last = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]
    return [np.r_[0.0, np.cumsum(w[order], dtype=np.float64)[last]] for w in weights]


def auroc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve of ``scores`` for the boolean ``positive``; None when one
    class is absent."""
    scores = np.asarray(scores, np.float64).ravel()
    positive = np.asarray(positive, bool).ravel()
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    tp, fp = _steps(scores, (positive.astype(np.float64), (~positive).astype(np.float64)))
    return float(np.trapezoid(tp / n_pos, fp / n_neg))


def f1_max(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """The best F1 over every threshold (score >= threshold is called defective)."""
    scores = np.asarray(scores, np.float64).ravel()
    positive = np.asarray(positive, bool).ravel()
    n_pos = int(positive.sum())
    if n_pos == 0:
        return None
    tp, called = _steps(scores, (positive.astype(np.float64), np.ones(scores.size)))
    f1 = 2 * tp[1:] / (called[1:] + n_pos)
    return float(f1.max())


def aupro(
    maps: list[np.ndarray], masks: list[np.ndarray], ignore: int = 255, limit: float = 0.3
) -> float | None:
    """Normalised area under the per-region-overlap curve up to false positive rate ``limit``.

    Each connected defect region (8-connected, per image) weighs the same whatever its size:
    the overlap at a threshold is the mean over regions of the share of its pixels at or
    above it, which is a cumulative sum of per-pixel weights ``1 / (regions * region size)``.
    """
    weights, normal, values = [], [], []
    regions = 0
    labelled = []
    for amap, mask in zip(maps, masks):
        defect = ((mask > 0) & (mask != ignore)).astype(np.uint8)
        count, labels = cv2.connectedComponents(defect, connectivity=8)
        labelled.append((amap, mask, labels, count - 1))
        regions += count - 1
    if regions == 0:
        return None
    for amap, mask, labels, count in labelled:
        keep = mask.ravel() != ignore
        lab = labels.ravel()[keep]
        sizes = np.bincount(lab, minlength=count + 1).astype(np.float64)
        w = np.where(lab > 0, 1.0 / (regions * sizes[lab].clip(min=1)), 0.0)
        weights.append(w)
        normal.append((lab == 0).astype(np.float64))
        values.append(np.asarray(amap, np.float64).ravel()[keep])
    n_normal = float(sum(n.sum() for n in normal))
    if n_normal == 0:
        return None
    pro, fp = _steps(np.concatenate(values), (np.concatenate(weights), np.concatenate(normal)))
    fpr = fp / n_normal
    cut = int(np.searchsorted(fpr, limit, side="right"))
    if cut < fpr.size:  # the curve's value at exactly ``limit``, interpolated
        f0, f1, p0, p1 = fpr[cut - 1], fpr[cut], pro[cut - 1], pro[cut]
        at = p0 + (p1 - p0) * (limit - f0) / (f1 - f0) if f1 > f0 else p1
        fpr, pro = np.r_[fpr[:cut], limit], np.r_[pro[:cut], at]
    return float(np.trapezoid(pro, fpr) / limit)


def detection_scores(
    maps: list[np.ndarray], masks: list[np.ndarray], ignore: int = 255
) -> DetectionScores:
    """The four scores of per-pixel anomaly ``maps`` against ground-truth ``masks`` (class
    indices, 0 good, ``ignore`` unlabelled), each map the size of its mask. The image score is
    the map's maximum, as PatchCore takes it."""
    if len(maps) != len(masks):
        raise ValueError(f"{len(maps)} anomaly maps for {len(masks)} masks")
    for i, (amap, mask) in enumerate(zip(maps, masks)):
        if amap.shape != mask.shape:
            raise ValueError(f"image {i}: anomaly map {amap.shape} is not its mask's {mask.shape}")
    defective = np.array([bool(((m > 0) & (m != ignore)).any()) for m in masks])
    image = np.array([float(np.max(a)) for a in maps])
    keep = [m.ravel() != ignore for m in masks]
    pixels = np.concatenate([a.ravel()[k] for a, k in zip(maps, keep)]) if maps else np.zeros(0)
    truth = np.concatenate([(m.ravel() > 0)[k] for m, k in zip(masks, keep)]) if maps else pixels
    return DetectionScores(
        image_auroc=auroc(image, defective),
        pixel_auroc=auroc(pixels, truth.astype(bool)),
        aupro=aupro(maps, masks, ignore),
        f1_max=f1_max(image, defective),
        images=len(maps),
        defective_images=int(defective.sum()),
    )
