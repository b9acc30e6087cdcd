"""Ship a model's gate sample (issue 26): a few of its held-out images, cropped, with their
masks, so that every machine can check each variant's arithmetic on itself before running it.

    python training/gate_sample.py plugins/inspect_plugins/industrial/models/steel.onnx \\
        --data ../shared/datasets/neu-steel [--images 8] [--side 320]

Takes ``--images`` of the images the card holds out (its validation_split: what the variants'
gate scored at export), evenly spaced, each cropped to at most ``--side`` px a side around its
mask's labelled pixels (inspect_core/runtime/gate_sample.py), scores the fp32 file on them,
writes ``<model>.gate.npz`` beside the model and names it in the card
(``variants.gate_sample``: file, sha256, images, the fp32 file's mIoU on them). The model and
its variant files are not touched.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from _cli import parser, run

from inspect_core.cards import sha256_file
from inspect_core.errors import ModelError
from inspect_core.health.familiarity_fit import read_card
from inspect_core.runtime.gate_sample import CROP, GateSample, crop, gate_sample_path, save
from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.runtime.tuning import sample_scores
from inspect_core.training.holdout import held_out_dataset


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("model", type=Path, help="the model's .onnx file, its card beside it")
    ap.add_argument("--data", required=True, help="the dataset folder it was trained on")
    ap.add_argument("--images", type=int, default=8, help="how many held-out images [8]")
    ap.add_argument("--side", type=int, default=CROP, help=f"crop side, px [{CROP}]")
    args = ap.parse_args()
    model: Path = args.model
    card = read_card(model)
    if not card.get("variants"):
        raise ModelError(f"{model}: its card lists no variants: nothing to gate")
    ds = held_out_dataset(card, args.data)
    picks = sorted({int(i) for i in np.linspace(0, len(ds) - 1, min(args.images, len(ds)))})
    images, masks = [], []
    for i in picks:
        img, mask = ds.load(i)
        img, mask = crop(img, mask, ds.ignore_index, args.side)
        images.append(np.ascontiguousarray(img))
        masks.append(np.ascontiguousarray(mask))
    fp32 = OnnxModel(model, verify=False, variant="fp32")
    labels = [fp32.probabilities(img).argmax(0) for img in images]
    what = f"{len(picks)} of the {len(ds)} held-out images, cropped to at most {args.side} px"
    sample = GateSample(tuple(images), tuple(masks), ds.ignore_index, what)
    miou = float(sample_scores(labels, sample, fp32.classes).summary()["miou"])
    path = save(
        GateSample(sample.images, sample.masks, sample.ignore_index, what, round(miou, 5)),
        gate_sample_path(model),
    )
    card["variants"]["gate_sample"] = {
        "file": path.name,
        "sha256": sha256_file(path),
        "images": len(picks),
        "what": what,
        "fp32_miou": round(miou, 5),
    }
    card_path = model.with_suffix(".json")
    tmp = card_path.with_name(card_path.name + ".tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    tmp.replace(card_path)
    print(f"{path}: {what}, {path.stat().st_size / 1024:.0f} KiB; fp32 mIoU on them {miou:.4f}")


if __name__ == "__main__":
    run(main)
