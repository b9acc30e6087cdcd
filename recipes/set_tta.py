"""Decide test-time augmentation for a trained model on its *validation* split.

    python recipes/set_tta.py runs/steel --data ../shared/datasets/neu-steel --flips h,v

Evaluates the model without and with flip averaging; when the flips raise val mIoU, they are
written into the model's embedded metadata (so every runtime uses them) and the card is
updated (new sha256, both scores). The test split is never looked at.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path


from inspect_core.card import sha256_file
from inspect_core.errors import InspectError
from inspect_core.commands.evaluate import evaluate_model
from inspect_core.runtime import OnnxModel, edit_meta


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path, help="run folder with model.onnx and model.json")
    ap.add_argument("--data", required=True, help="dataset folder (its val split is used)")
    ap.add_argument("--flips", default="h,v", help="flips to try: h, v, hv (comma-separated)")
    args = ap.parse_args()
    path = args.run / "model.onnx"
    model = OnnxModel(path)
    # whatever the file says now; a prior correction was fitted to the old averaging, so it
    # is dropped too (recipes/calibrate.py runs after this and fits it again)
    model.meta = replace(model.meta, tta=(), class_bias=())
    base = evaluate_model(model, args.data, "val")
    flips = tuple(f for f in args.flips.split(",") if f)
    model.meta = replace(model.meta, tta=flips)
    tta = evaluate_model(model, args.data, "val")
    print(f"val mIoU {base['miou']:.4f} -> {tta['miou']:.4f} with flips {flips}")
    card_path = args.run / "model.json"
    card = json.loads(card_path.read_text())
    card["validation_no_tta"] = base
    keep = tta["miou"] > base["miou"]
    def change(meta: dict) -> None:
        meta["tta"] = list(flips) if keep else []
        meta.pop("class_bias", None)

    edit_meta(path, change)
    card["tta"] = list(flips) if keep else []
    card["validation"] = tta if keep else base
    card["validation_source"] = "inspect evaluate (ONNX Runtime) on the val split"
    for stale in ("calibration", "validation_uncalibrated"):
        card.pop(stale, None)
    card["sha256"] = sha256_file(path)
    card_path.write_text(json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    try:
        main()
    except InspectError as e:  # a missing model or dataset: say which, no traceback
        raise SystemExit(f"error: {e}")
