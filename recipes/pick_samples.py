"""Pick a recipe's sample images from its dataset's *validation* split and write them into the
plugin with their expected verdicts.

    python recipes/pick_samples.py industrial steel [--n 4] [--data ../shared/datasets]

The expected verdict of an image is what the recipe's rules say about its ground-truth mask
(the true mask fed through the same post-processing and rules). Only images where the
model's verdict agrees with that are taken, so a sample documents correct behaviour; the
plugin test then fails if a later model or rule change alters any of them. When the split has
no defect-free image (NEU-Seg: every image has a defect), a defect-free crop is used for PASS.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import cv2
import numpy as np

from inspect_core.data import open_dataset
from inspect_core.pipeline import Inspector
from inspect_core.plugins import load_plugins
from inspect_core.resolve import find_recipe

MARK = "# --- samples (written by recipes/pick_samples.py) ---"


def onehot(mask: np.ndarray, n: int) -> np.ndarray:
    m = np.where(mask == 255, 0, mask)
    return np.eye(n, dtype=np.float32)[m].transpose(2, 0, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("plugin")
    ap.add_argument("recipe")
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--data", default="../shared/datasets")
    ap.add_argument("--scan", type=int, default=60, help="validation images to look at")
    args = ap.parse_args()
    reg = load_plugins()
    recipe = find_recipe(args.plugin, args.recipe)
    insp = Inspector(recipe, reg.rules)
    ds = open_dataset(Path(args.data) / recipe.dataset, "val")
    n = len(insp.classes)
    picked: dict[str, list] = {"PASS": [], "REVIEW": [], "FAIL": []}
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ds))[: args.scan]
    for i in order:
        img, mask = ds.load(int(i))
        truth = insp.judge_probs(img, onehot(mask, n)).verdict.decision.value
        got = insp.inspect_image(img).verdict.decision.value
        if truth == got:
            picked[got].append((ds.samples[int(i)].image, img))
        if not picked["PASS"] and mask.max() > 0 and min(mask.shape) >= 128:
            crop = _clean_crop(img, mask)
            if crop is not None and insp.inspect_image(crop).verdict.decision.value == "PASS":
                picked["PASS"].append((ds.samples[int(i)].image.with_name(
                    ds.samples[int(i)].image.stem + "_clean_crop.png"), crop))
    want = {"FAIL": max(1, args.n // 2), "PASS": max(1, args.n // 4), "REVIEW": 1}
    chosen = [(v, p, im) for v in ("FAIL", "PASS", "REVIEW") for p, im in picked[v][: want[v]]]
    out_dir = recipe.model.parent.parent / "samples"
    out_dir.mkdir(exist_ok=True)
    lines = [MARK]
    for verdict, path, img in chosen:
        name = f"{recipe.name}_{verdict.lower()}_{Path(path).stem}.png"
        bgr = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(out_dir / name), bgr)
        lines += ["", "[[samples]]", f'image = "../samples/{name}"', f'expected = "{verdict}"']
        print(f"{verdict:6} {name}")
    toml = recipe.model.parent.parent / "recipes" / f"{recipe.name}.toml"
    text = toml.read_text()
    text = re.split(re.escape(MARK), text)[0].rstrip() + "\n\n" + "\n".join(lines) + "\n"
    toml.write_text(text)


def _clean_crop(img: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    s = min(mask.shape) // 2
    for y in range(0, mask.shape[0] - s + 1, max(1, s // 4)):
        for x in range(0, mask.shape[1] - s + 1, max(1, s // 4)):
            if not mask[y:y + s, x:x + s].any():
                return img[y:y + s, x:x + s].copy()
    return None


if __name__ == "__main__":
    main()
