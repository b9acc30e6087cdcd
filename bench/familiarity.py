"""Are the images a recipe flags the ones its model segments worst? (issue 25, item 5)

    python bench/familiarity.py [--recipes industrial:steel,...] [--datasets ../shared/datasets]
                                [--threads 2] [--out familiarity.md] [--json]

For every shipped recipe whose model ships a familiarity file, its recipe's whole chain as a
station runs it (preprocessing, tiles, test-time copies, the variant this CPU runs, the
recipe's ``[health]`` limits) over the images its card holds out (the validation_split: no
fit, threshold or choice of the model saw them as training images; the familiarity threshold
was set on them, so their own share flagged is low by construction) and over the same images
blurred (Gaussian sigma 3 px), darkened (x 0.5) and over-exposed (x 2, clipped), and, where
the card lists them, the val images of the groups it trained on. Per set: the share flagged
unfamiliar, the share breaking a quality limit, either, and the mean per-image IoU (over the
classes in the image's mask or prediction) of the flagged and of the other images. Then 40
val images of each other product's dataset (a grey model sees them in grey, as a grey camera
would give them): the share flagged by either check, which is what an operator sees.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from inspect_core.data.datasets import Dataset, open_dataset
from inspect_core.data.frames import model_frame
from inspect_core.data.metrics import confusion
from inspect_core.health.familiarity_fit import read_card
from inspect_core.plugin_api.resolve import find_recipe
from inspect_core.runtime.inspector import Inspector
from inspect_core.training.holdout import held_out_dataset, seen_dataset

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {  # recipe -> its dataset folder
    "industrial:steel": "neu-steel",
    "industrial:tile": "magnetic-tile",
    "industrial:ballscrew": "ball-screw",
    "aerial:landcover": "dubai-aerial",
    "robotics:driving": "camvid",
}
OTHER_IMAGES = 40  # of each other product's val images, evenly spaced
Shift = Callable[[np.ndarray], np.ndarray]
SHIFTS: dict[str, Shift | None] = {
    "held-out": None,
    "blurred": lambda im: cv2.GaussianBlur(im, (0, 0), 3),
    "darkened": lambda im: (im.astype(np.float32) * 0.5).astype(np.uint8),
    "over-exposed": lambda im: cv2.convertScaleAbs(im, alpha=2.0),
}


@dataclass
class Row:
    recipe: str
    variant: str
    images: str  # the set
    n: int
    unfamiliar: float
    quality: float
    either: float
    iou_flagged: float | None  # mean per-image IoU of the images flagged unfamiliar
    iou_familiar: float | None  # of the others
    flagged_n: int


def image_iou(pred: np.ndarray, mask: np.ndarray, classes: int, ignore: int) -> float:
    """Mean IoU over the classes present in the mask or the prediction of one image."""
    cm = confusion(pred, mask, classes, ignore).astype(np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    present = union > 0
    return float(np.mean(tp[present] / union[present])) if present.any() else 1.0


def measure(
    insp: Inspector, ds: Dataset, shift: Shift | None, scored: bool = True
) -> tuple[list[float], ...]:
    """Per image: its IoU (NaN where not ``scored``: another product's classes), flagged
    unfamiliar (1/0), breaking a quality limit (1/0)."""
    ious, unfamiliar, quality = [], [], []
    for i in range(len(ds)):
        img, mask = ds.load(i)
        if shift is not None:
            img = shift(img)
        if insp.meta.channels == 1 and img.ndim == 3:  # a grey line's camera
            img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        frame, mask = model_frame(img, mask, insp.preprocess, ds.samples[i].image)
        run = insp.run_frame(frame)
        assert run.probs is not None
        result = insp.judge_probs(frame, run.probs, run.features)
        pred = run.probs.argmax(0)
        ious.append(image_iou(pred, mask, len(insp.classes), ds.ignore_index) if scored else np.nan)
        health = result.health
        unfamiliar.append(float(bool(health and health.unfamiliar)))
        quality.append(float(bool(health and health.problems)))
    return ious, unfamiliar, quality


def bench_recipe(spec: str, data: Path, threads: int) -> list[Row]:
    plugin, name = spec.split(":")
    recipe = find_recipe(plugin, name)
    insp = Inspector(recipe, threads=threads)
    if insp.familiarity is None:
        print(f"{spec}: its model ships no familiarity file; skipped")
        return []
    card = read_card(Path(recipe.model))
    sets = {k: (held_out_dataset(card, str(data)), s) for k, s in SHIFTS.items()}
    if (seen := seen_dataset(card, str(data))) is not None:
        sets["seen groups"] = (seen, None)
    others = {}  # another product's val images: flagged or not (their masks name other classes)
    for name in RECIPES.values():
        if name != data.name:
            ds = open_dataset(data.parent / name, "val")
            keep = np.linspace(0, len(ds) - 1, min(OTHER_IMAGES, len(ds))).astype(int)
            others[name] = ds.subset(sorted(set(keep.tolist())), ds.split)
    rows = []
    for label, (ds, shift) in [*sets.items(), *((k, (v, None)) for k, v in others.items())]:
        t = time.perf_counter()
        ious, unf, qual = (np.array(x) for x in measure(insp, ds, shift, label not in others))
        either = np.maximum(unf, qual)
        flagged = unf > 0
        rows.append(
            Row(
                spec,
                insp.model.variant_name,
                label,
                len(ds),
                float(unf.mean()),
                float(qual.mean()),
                float(either.mean()),
                _mean(ious[flagged]),
                _mean(ious[~flagged]),
                int(flagged.sum()),
            )
        )
        print(f"{spec} {label}: {len(ds)} images in {time.perf_counter() - t:.0f} s", flush=True)
    return rows


def _mean(v: np.ndarray) -> float | None:
    v = v[~np.isnan(v)]
    return float(v.mean()) if len(v) else None


def table(rows: list[Row]) -> str:
    head = (
        "| recipe (variant) | images | n | unfamiliar | quality limit broken | either "
        "| mean image IoU, flagged unfamiliar (n) | the others |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|"
    )

    def iou(v: float | None) -> str:
        return "–" if v is None else f"{v:.3f}"

    lines = [
        f"| {r.recipe} ({r.variant}) | {r.images} | {r.n} | {r.unfamiliar:.1%} | "
        f"{r.quality:.1%} | {r.either:.1%} | {iou(r.iou_flagged)} ({r.flagged_n}) | "
        f"{iou(r.iou_familiar)} |"
        for r in rows
    ]
    return "\n".join([head, *lines])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows: list[Row] = []
    for spec in args.recipes.split(","):
        rows += bench_recipe(spec, args.datasets / RECIPES[spec], args.threads)
    text = f"CPU: {platform.processor() or platform.machine()}\n\n{table(rows)}\n"
    print(json.dumps([asdict(r) for r in rows]) if args.json else text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
