"""Pick a recipe's sample images from its dataset's *validation* split and write them into the
plugin with their expected verdicts.

    python training/pick_samples.py industrial steel [--n 4] [--data ../shared/datasets]

The expected verdict of an image is what the recipe's rules say about its ground-truth mask
(the true mask fed through the same post-processing and rules). Only images where the
model's verdict agrees with that are taken, so a sample documents correct behaviour; the
plugin test then fails if a later model or rule change alters any of them. When the split has
no defect-free image (NEU-Seg: every image has a defect), a crop of a val image is used.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
from _cli import parser, run

from inspect_core.data.datasets import open_dataset
from inspect_core.plugin_api.manager import load_plugins
from inspect_core.plugin_api.resolve import find_recipe
from inspect_core.runtime.inspector import Inspector

MARK = "# --- samples (written by training/pick_samples.py) ---"


def onehot(mask: np.ndarray, n: int) -> np.ndarray:
    m = np.where(mask == 255, 0, mask)
    return np.eye(n, dtype=np.float32)[m].transpose(2, 0, 1)


def main() -> None:
    ap = parser(__doc__)
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

    def verdicts(img, mask):
        truth = insp.judge_probs(img, onehot(mask, n)).verdict.decision.value
        return truth, insp.inspect_image(img).verdict.decision.value

    for i in order:
        img, mask = ds.load(int(i))
        truth, got = verdicts(img, mask)
        if truth == got:
            picked[got].append((ds.samples[int(i)].image, img))
    # a set without defect-free images (NEU-Seg) or without FAILs: use crops of val images
    for want in ("PASS", "FAIL"):
        for i in order:
            if picked[want]:
                break
            img, mask = ds.load(int(i))
            for k, (ci, cm) in enumerate(_crops(img, mask)):
                truth, got = verdicts(ci, cm)
                if truth == got == want:
                    stem = ds.samples[int(i)].image.stem
                    picked[want].append((Path(f"{stem}_crop{k}"), ci))
                    break
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


def _crops(img: np.ndarray, mask: np.ndarray):
    """Half-size crops on a grid (image and mask)."""
    sh, sw = max(32, mask.shape[0] // 2), max(32, mask.shape[1] // 2)
    for y in range(0, max(1, mask.shape[0] - sh + 1), max(1, sh // 2)):
        for x in range(0, max(1, mask.shape[1] - sw + 1), max(1, sw // 2)):
            yield img[y : y + sh, x : x + sw].copy(), mask[y : y + sh, x : x + sw].copy()


if __name__ == "__main__":
    run(main)
