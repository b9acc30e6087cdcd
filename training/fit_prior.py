"""Fit the class prior correction of a trained model on its *validation* split.

    python training/fit_prior.py runs/tile --data ../shared/datasets/magnetic-tile
    python training/fit_prior.py plugins/industrial/models/steel.onnx --data ../shared/datasets/neu-steel

Runs the model (with its test-time averaging) over the val images once, fits log-probability
offsets to val mIoU in two forms, one shared by every non-background class and one per class
(inspect_core/training/calibration.py), and estimates what each is worth on unseen images by two-fold
cross-validation over the val images. The form with the better estimate goes into the model's
embedded metadata (every runtime applies it) when that estimate beats the uncalibrated model;
the card gets the new scores, measured again with the runtime at full resolution, the old
ones and the estimates. Otherwise any earlier correction is removed. The test split is never
looked at.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from inspect_core.cards import sha256_file
from inspect_core.commands.evaluate import evaluate_model
from inspect_core.data.datasets import open_dataset
from inspect_core.errors import InspectError
from inspect_core.runtime.onnx_model import OnnxModel, edit_meta
from inspect_core.training.calibration import Pixels, choose


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "run",
        type=Path,
        help="run folder with model.onnx and model.json, or a "
        "model .onnx with its card (.json) beside it",
    )
    ap.add_argument("--data", required=True, help="dataset folder (its val split is used)")
    ap.add_argument("--step", type=int, default=2, help="use every STEP-th pixel per axis")
    args = ap.parse_args()
    path = args.run if args.run.suffix == ".onnx" else args.run / "model.onnx"
    card_path = path.with_suffix(".json")
    model = OnnxModel(path)
    model.meta = replace(model.meta, class_bias=())
    ds = open_dataset(args.data, "val")

    def scored():
        for i in range(len(ds)):
            img, mask = ds.load(i)
            yield model.probabilities(img), mask

    px = Pixels.gather(scored(), ds.ignore_index, args.step)
    c = choose(px)
    print(
        f"val mIoU (pixel step {args.step}): {c.before:.4f} uncalibrated; fitted "
        + ", ".join(f"{m} {v:.4f} (two-fold {c.two_fold[m]:.4f})" for m, v in c.fitted.items())
        + f"; chosen: {c.mode or 'none'} {dict(zip(model.classes, np.round(c.bias, 2).tolist()))}"
    )
    card = json.loads(card_path.read_text())
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

    edit_meta(path, change)
    card["sha256"] = sha256_file(path)
    if c.mode is not None:
        card.setdefault("validation_uncalibrated", card.get("validation"))  # kept on a refit
        card["validation"] = evaluate_model(
            OnnxModel(path, verify=False), args.data, "val"
        )  # card written below
        print(f"applied: full-resolution val mIoU {card['validation']['miou']:.4f}")
    else:
        if "validation_uncalibrated" in card:  # an earlier correction is taken out again
            card["validation"] = card.pop("validation_uncalibrated")
        print("not applied: neither form beats the uncalibrated model on held-out images")
    card_path.write_text(json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    try:
        main()
    except InspectError as e:  # a missing model or dataset: say which, no traceback
        raise SystemExit(f"error: {e}")
