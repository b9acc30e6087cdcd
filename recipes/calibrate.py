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

from inspect_core.calibrate import Pixels, confusion_for, fit_class_bias, miou, two_fold_miou
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
    k = px.logp.shape[0]
    base = miou(confusion_for(px, np.zeros(k, np.float32)))
    bias = fit_class_bias(px)
    fitted = miou(confusion_for(px, bias))
    cv = two_fold_miou(px)
    print(f"val mIoU (every {args.step}th pixel): {base:.4f} uncalibrated, {fitted:.4f} fitted, "
          f"{cv:.4f} two-fold; offsets {dict(zip(model.classes, np.round(bias, 2).tolist()))}")
    card = json.loads(card_path.read_text())
    card["calibration"] = {"class_bias": [float(b) for b in bias], "sampled_miou_before": base,
                           "sampled_miou_fitted": fitted, "sampled_miou_two_fold": cv,
                           "pixel_step": args.step, "applied": False}
    if fitted > base + 0.002 and cv > base:
        proto = onnx.load(str(path))
        for p in proto.metadata_props:
            if p.key == META_KEY:
                meta = json.loads(p.value)
                meta["class_bias"] = [float(b) for b in bias]
                p.value = json.dumps(meta)
        onnx.save(proto, str(path))
        card.setdefault("validation_uncalibrated", card.get("validation"))  # kept on a refit
        card["validation"] = evaluate_model(OnnxModel(path), args.data, "val")
        card["calibration"]["applied"] = True
        card["sha256"] = sha256_file(path)
        print(f"applied: full-resolution val mIoU {card['validation']['miou']:.4f}")
    else:
        print("not applied: it does not beat the uncalibrated model")
    card_path.write_text(json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    main()
