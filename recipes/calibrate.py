"""Fit the class prior correction of a trained model on its *validation* split.

    python recipes/calibrate.py runs/tile --data ../shared/datasets/magnetic-tile
    python recipes/calibrate.py plugins/industrial/models/steel.onnx --data ../shared/datasets/neu-steel

Runs the model (with its flip averaging) over the val images once, fits per-class
log-probability offsets to val mIoU (inspect_core/calibrate.py), and estimates what they are
worth on unseen images by two-fold cross-validation over the val images. When both the fit
and the cross-validated estimate beat the uncalibrated model, the offsets go into the
model's embedded metadata (every runtime applies them) and the card gets the new scores,
measured again with the runtime at full resolution, the old ones and the estimate. The test
split is never looked at.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx

from inspect_core.calibrate import Pixels, choose
from inspect_core.card import sha256_file
from inspect_core.commands.evaluate import evaluate_model
from inspect_core.data import open_dataset
from inspect_core.runtime import META_KEY, OnnxModel


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path, help="run folder with model.onnx and model.json, or a "
                    "model .onnx with its card (.json) beside it")
    ap.add_argument("--data", required=True)
    ap.add_argument("--step", type=int, default=2, help="use every STEP-th pixel per axis")
    args = ap.parse_args()
    path = args.run if args.run.suffix == ".onnx" else args.run / "model.onnx"
    card_path = path.with_suffix(".json")
    model = OnnxModel(path)
    model.meta = replace(model.meta, class_bias=())
    ds = open_dataset(args.data, "val")
    items = (model.probabilities(ds.load(i)[0]) for i in range(len(ds)))
    masks = (ds.load(i)[1] for i in range(len(ds)))
    px = Pixels.gather(zip(items, masks), ds.ignore_index, args.step)
    c = choose(px)
    print(f"val mIoU (every {args.step}th pixel): {c.before:.4f} uncalibrated; fitted "
          + ", ".join(f"{m} {v:.4f} (two-fold {c.two_fold[m]:.4f})" for m, v in c.fitted.items())
          + f"; chosen: {c.mode or 'none'} {dict(zip(model.classes, np.round(c.bias, 2).tolist()))}")
    card = json.loads(card_path.read_text())
    card["calibration"] = {"mode": c.mode, "class_bias": [float(b) for b in c.bias],
                           "sampled_miou_before": c.before, "sampled_miou_fitted": c.fitted,
                           "sampled_miou_two_fold": c.two_fold, "pixel_step": args.step,
                           "applied": c.mode is not None}
    proto = onnx.load(str(path))
    for p in proto.metadata_props:
        if p.key == META_KEY:
            meta = json.loads(p.value)
            meta.pop("class_bias", None)
            if c.mode is not None:
                meta["class_bias"] = [float(b) for b in c.bias]
            p.value = json.dumps(meta)
    onnx.save(proto, str(path))
    card["sha256"] = sha256_file(path)
    if c.mode is not None:
        card.setdefault("validation_uncalibrated", card.get("validation"))  # kept on a refit
        card["validation"] = evaluate_model(OnnxModel(path), args.data, "val")
        print(f"applied: full-resolution val mIoU {card['validation']['miou']:.4f}")
    else:
        if "validation_uncalibrated" in card:  # an earlier correction is taken out again
            card["validation"] = card.pop("validation_uncalibrated")
        print("not applied: neither form beats the uncalibrated model on held-out images")
    card_path.write_text(json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    main()
