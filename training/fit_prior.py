"""Fit the class prior correction of a trained model on its *validation* split.

    python training/fit_prior.py runs/tile --data ../shared/datasets/magnetic-tile
    python training/fit_prior.py plugins/inspect_plugins/industrial/models/steel.onnx --data DATASET

Runs the model (with its test-time averaging) over the images it was validated on once (its
card's validation_split: the val split, or the groups held out from training), fits
log-probability offsets to their mIoU in two forms, one shared by every non-background class
and one per class (inspect_core/training/calibration.py), and estimates what each is worth on
unseen images by two-fold cross-validation: group against group where the held-out images come
from two groups or more (a correction fitted on one tile must help on another), else blocks of
neighbouring images. The form with the better estimate goes into the
model's embedded metadata (every runtime applies it) when that estimate beats the uncalibrated
model; the card's headline score is then measured again with the runtime at full resolution,
each image with the offsets fitted on the other fold (never a number fitted on the images it
is measured on), beside the uncalibrated score and the estimates. Otherwise any earlier
correction is removed. The test split is never looked at.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from _cli import parser, run

from inspect_core.commands.evaluate import evaluate_model
from inspect_core.data.datasets import Dataset
from inspect_core.data.groups import group_names
from inspect_core.data.metrics import SegmentationScores
from inspect_core.runtime.model_file import edit_meta
from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.runtime.postprocess import argmax_labels
from inspect_core.training.calibration import Choice, Pixels, choose, group_folds, image_folds
from inspect_core.training.holdout import held_out_dataset, seen_dataset
from inspect_core.training.model_card import save_card


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument(
        "run",
        type=Path,
        help="run folder with model.onnx and model.json, or a "
        "model .onnx with its card (.json) beside it",
    )
    ap.add_argument("--data", required=True, help="dataset folder (its val split is used)")
    ap.add_argument("--step", type=int, default=2, help="use every STEP-th pixel per axis")
    ap.add_argument(
        "--groups",
        default=None,
        help="groups pattern (regex, one capture group) for the two folds: a correction must "
        "help on another group than the one it was fitted on [default: the card's, else "
        "classes.json's; none: blocks of neighbouring images]",
    )
    args = ap.parse_args()
    path = args.run if args.run.suffix == ".onnx" else args.run / "model.onnx"
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    ds = held_out_dataset(card, args.data, args.groups)
    folds = group_folds(group_names(ds)) if ds.groups else None
    c = fit(OnnxModel(path, variant="fp32"), ds, args.step, folds)
    card["calibration"] = {
        "mode": c.mode,
        "class_bias": [float(b) for b in c.bias],
        "sampled_miou_before": c.before,
        "sampled_miou_fitted": c.fitted,
        "sampled_miou_two_fold": c.two_fold,
        "pixel_step": args.step,
        "applied": c.mode is not None,
    }

    def change(meta: dict) -> None:
        meta.pop("class_bias", None)
        if c.mode is not None:
            meta["class_bias"] = [float(b) for b in c.bias]

    if c.mode is not None:  # scored with the correction in memory: the file changes last
        corrected = OnnxModel(path, verify=False, variant="fp32")
        corrected.meta = replace(corrected.meta, class_bias=tuple(float(b) for b in c.bias))
        card.setdefault("validation_uncalibrated", card.get("validation"))  # kept on a refit
        # never a score of offsets fitted on the images it is measured on: each image is
        # scored with the offsets fitted on the other fold's images
        card["validation"] = cross_fitted(path, ds, c, folds)
        card["calibration"]["validation"] = (
            "cross-fitted: each image scored with the offsets fitted on the other fold "
            f"({'by group' if folds is not None else 'blocks of images'}); the shipped offsets "
            "are fitted on all of them"
        )
        if (seen := seen_dataset(card, args.data)) is not None:  # not fitted on: as shipped
            card["validation_seen_groups"] = evaluate_model(corrected, seen, "val-seen")
        print(f"applied: full-resolution cross-fitted val mIoU {card['validation']['miou']:.4f}")
    else:
        if "validation_uncalibrated" in card:  # an earlier correction is taken out again
            card["validation"] = card.pop("validation_uncalibrated")
            if (seen := seen_dataset(card, args.data)) is not None:
                bare = OnnxModel(path, verify=False, variant="fp32")
                bare.meta = replace(bare.meta, class_bias=())
                card["validation_seen_groups"] = evaluate_model(bare, seen, "val-seen")
        print("not applied: neither form beats the uncalibrated model on held-out images")
    edit_meta(path, change)  # then the card with its new sha256, moments apart
    save_card(card, card_path, path)


def fit(model: OnnxModel, ds: Dataset, step: int, folds: np.ndarray | None) -> Choice:
    """Fit both forms of the correction on ``ds`` (every ``step``-th pixel per axis) for
    ``model`` without any correction, and choose (see the module docstring); ``folds``: each
    image's fold for the held-out estimate (None: blocks of images)."""
    model.meta = replace(model.meta, class_bias=())

    def scored():
        for i in range(len(ds)):
            img, mask = ds.load(i)
            yield model.probabilities(img), mask

    c = choose(Pixels.gather(scored(), ds.ignore_index, step), folds)
    print(
        f"held-out mIoU (pixel step {step}, two folds by "
        f"{'group' if folds is not None else 'blocks of images'}): {c.before:.4f} uncalibrated; "
        "fitted "
        + ", ".join(f"{m} {v:.4f} (two-fold {c.two_fold[m]:.4f})" for m, v in c.fitted.items())
        + f"; chosen: {c.mode or 'none'} {dict(zip(model.classes, np.round(c.bias, 2).tolist()))}"
    )
    return c


def cross_fitted(path: Path, ds: Dataset, c: Choice, folds: np.ndarray | None) -> dict:
    """Full-resolution scores of the correction on ``ds`` as on new images: every image scored
    by the runtime with the chosen form's offsets fitted on the other fold's images."""
    fold_of = image_folds(len(ds), folds)
    models = []
    for bias in c.fold_bias:
        m = OnnxModel(path, verify=False, variant="fp32")
        m.meta = replace(m.meta, class_bias=tuple(float(b) for b in bias))
        models.append(m)
    scores = SegmentationScores(ds.classes)
    for i in range(len(ds)):
        img, mask = ds.load(i)
        scores.update(argmax_labels(models[fold_of[i]].probabilities(img)), mask, ds.ignore_index)
    return scores.summary()


if __name__ == "__main__":
    run(main)
