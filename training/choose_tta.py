"""Decide test-time augmentation for a trained model on the images it was validated on.

    python training/choose_tta.py runs/steel --data ../shared/datasets/neu-steel --flips h,v
    python training/choose_tta.py runs/tile --data D --flips h,v,hv --flips h,v,hv,t,at,r90,r270

Evaluates the model without test-time augmentation and with each candidate set of transforms
(flips h, v, hv; transposes t, at; quarter turns r90, r270:
inspect_core.runtime.onnx_model.TTA_TRANSFORMS); the best candidate, if it raises val mIoU, is
written into the model's embedded metadata (so every runtime uses it) and the card is updated
(new sha256, every score). The images are those of the card's validation_split: the val split,
or the groups held out from training (--val-groups), so the choice is made on groups the model
never saw. The test split is never looked at.

With ``--budget-ms MS`` a candidate is kept only when it also fits the recipe's latency budget:
each (and the model without copies) is timed at the size of the first validation image, the
size the line delivers, with ONNX Runtime on every core (median of ``--runs``); the best mIoU
among those within the budget wins. The card records the budget, each candidate's mIoU and
milliseconds, and what was chosen (``tta_choice``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from _cli import parser, run

from inspect_core.commands.evaluate import evaluate_model
from inspect_core.runtime.model_file import edit_meta
from inspect_core.runtime.onnx_model import TTA_TRANSFORMS, OnnxModel
from inspect_core.training.holdout import held_out_dataset, seen_dataset
from inspect_core.training.model_card import save_card


def main() -> None:
    ap = _parser()
    args = ap.parse_args()
    candidates = [tuple(f for f in c.split(",") if f) for c in (args.flips or ["h,v"])]
    for c in candidates:
        if unknown := [t for t in c if t not in TTA_TRANSFORMS]:
            ap.error(f"unknown transforms {unknown}; known: {', '.join(TTA_TRANSFORMS)}")
    path = args.run / "model.onnx"
    card_path = args.run / "model.json"
    card = json.loads(card_path.read_text())
    ds = held_out_dataset(card, args.data)
    model = OnnxModel(path, variant="fp32")  # copies are chosen on the fp32 network
    # whatever the file says now; a prior correction was fitted to the old averaging, so it
    # is dropped too (training/fit_prior.py runs after this and fits it again)
    model.meta = replace(model.meta, tta=(), class_bias=())
    base = evaluate_model(model, ds, "val")
    scores = {}
    for c in candidates:
        model.meta = replace(model.meta, tta=c)
        scores[c] = evaluate_model(model, ds, "val")
        print(f"val mIoU {base['miou']:.4f} -> {scores[c]['miou']:.4f} with {','.join(c)}")
    times = latencies(model, ds, [(), *candidates], args.runs) if args.budget_ms else {}
    fits = [c for c in candidates if not args.budget_ms or times[c] <= args.budget_ms]
    best = max(fits, key=lambda c: scores[c]["miou"]) if fits else ()
    chosen = best if fits and scores[best]["miou"] > base["miou"] else ()
    if args.budget_ms:
        card["tta_choice"] = _choice(args.budget_ms, ds, base, scores, times, chosen)
        print(f"latency budget {args.budget_ms:g} ms: {card['tta_choice']}")

    def change(meta: dict) -> None:
        meta["tta"] = list(chosen)
        meta.pop("class_bias", None)

    card["validation_no_tta"] = base
    card["tta_candidates"] = {",".join(c): round(s["miou"], 4) for c, s in scores.items()}
    card["tta"] = list(chosen)
    card["validation"] = scores[chosen] if chosen else base
    card["validation_source"] = (
        f"inspect evaluate (ONNX Runtime) on the {len(ds)} images of the card's validation_split"
    )
    for stale in ("calibration", "validation_uncalibrated"):
        card.pop(stale, None)
    if (seen := seen_dataset(card, args.data)) is not None:  # the same-distribution score
        model.meta = replace(model.meta, tta=chosen)
        card["validation_seen_groups"] = evaluate_model(model, seen, "val-seen")
    edit_meta(path, change)  # the file last, then its card with the new sha256
    save_card(card, card_path, path)


def _parser():
    ap = parser(__doc__)
    ap.add_argument("run", type=Path, help="run folder with model.onnx and model.json")
    ap.add_argument(
        "--data", required=True, help="dataset folder (the images the card validated on)"
    )
    ap.add_argument(
        "--flips",
        action="append",
        metavar="LIST",
        help="a candidate set of transforms, comma-separated (repeat to compare "
        f"several; default h,v); known: {', '.join(TTA_TRANSFORMS)}",
    )
    ap.add_argument(
        "--budget-ms",
        type=float,
        default=0.0,
        help="the recipe's latency budget per image in ms (0: none, choose on mIoU alone)",
    )
    ap.add_argument("--runs", type=int, default=7, help="timed runs per candidate")
    return ap


def _choice(budget_ms: float, ds, base: dict, scores: dict, times: dict, chosen: tuple) -> dict:
    """The card's ``tta_choice``: the budget, every candidate's mIoU and ms, what was chosen."""
    return {
        "budget_ms": budget_ms,
        "size": list(ds.load(0)[0].shape[:2][::-1]),
        "none": {"miou": round(base["miou"], 4), "ms": round(times[()], 1)},
        "candidates": {
            ",".join(c): {"miou": round(scores[c]["miou"], 4), "ms": round(times[c], 1)}
            for c in scores
        },
        "chosen": ",".join(chosen) if chosen else "none",
    }


def latencies(model: OnnxModel, ds, sets: list[tuple[str, ...]], runs: int) -> dict:
    """Median ms of the model over the first validation image with each set of copies."""
    import statistics
    import time

    img = ds.load(0)[0]
    out = {}
    for c in sets:
        model.meta = replace(model.meta, tta=c)
        model.probabilities(img)  # warm-up
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            model.probabilities(img)
            times.append((time.perf_counter() - t) * 1000)
        out[c] = statistics.median(times)
    return out


if __name__ == "__main__":
    run(main)
