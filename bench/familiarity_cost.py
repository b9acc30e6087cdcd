"""What the familiarity score adds to a recipe's model step (issue 25, item 1: at most 10%).

    python bench/familiarity_cost.py --before 97894e4 [--rounds 30] [--threads 1]

For each shipped segmentation model and each of its files (fp32 and the int8 variant), the
model step on one of its sample images as a station runs it (tiles, test-time copies, prior
correction), with the file as it was before it got the ``features`` output (taken from git at
``--before``) against the shipped file with the familiarity scored (the features averaged over
the runs, the Mahalanobis distance, the familiarity): median ms of ``--rounds`` rounds, the two
interleaved, one thread each.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from inspect_core.data.datasets import read_image
from inspect_core.health.familiarity import familiarity_path, load
from inspect_core.plugin_api.resolve import find_recipe
from inspect_core.runtime.machine import this_machine
from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.runtime.variant_timing import median_ms

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("industrial:steel", "industrial:tile", "industrial:ballscrew", "aerial:landcover")
RECIPES += ("robotics:driving",)


def old_file(path: Path, commit: str, folder: Path) -> Path:
    """``path`` as it was at ``commit`` (git show), written into ``folder``."""
    rel = path.resolve().relative_to(ROOT)
    blob = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:{rel.as_posix()}"],
        capture_output=True,
        check=True,
    ).stdout
    out = folder / path.name
    out.write_bytes(blob)
    return out


def rows_for(spec: str, commit: str, rounds: int, threads: int, folder: Path) -> list[dict]:
    plugin, name = spec.split(":")
    recipe = find_recipe(plugin, name)
    model = Path(recipe.model)
    img = read_image(recipe.samples[-1].image)
    frame = recipe.preprocess(img) if recipe.preprocess else img
    tile = recipe.tile or None
    out = []
    for suffix in (".onnx", ".int8.onnx"):
        new_path = model.with_name(model.stem + suffix)
        if not new_path.is_file():
            continue
        old_path = old_file(new_path, commit, folder)
        new = OnnxModel(new_path, threads=threads, verify=False)
        old = OnnxModel(old_path, threads=threads, verify=False)
        old.meta = new.meta  # the same tiles and copies: only the file differs
        fam = load(familiarity_path(new_path))

        def scored(new: OnnxModel = new, fam=fam) -> None:
            p = new.predict(frame, tile, recipe.tile_overlap)
            assert p.features is not None
            fam.familiarity_of(p.features)

        ms = median_ms(
            {
                "before": lambda old=old: old.probabilities(frame, tile, recipe.tile_overlap),
                "with familiarity": scored,
            },
            rounds,
        )
        out.append(
            {
                "recipe": spec,
                "file": new_path.name,
                "image": f"{frame.shape[1]}x{frame.shape[0]}",
                "ms_before": round(ms["before"], 2),
                "ms_with": round(ms["with familiarity"], 2),
                "added": round(ms["with familiarity"] / ms["before"] - 1, 4),
            }
        )
        print(json.dumps(out[-1]), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--before", required=True, help="a commit with the files before")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--recipes", default=",".join(RECIPES))
    args = ap.parse_args()
    print(this_machine(args.threads).describe())
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for spec in args.recipes.split(","):
            rows += rows_for(spec, args.before, args.rounds, args.threads, Path(tmp))
    print("| recipe | file | image | ms before | ms with familiarity | added |")
    print("|---|---|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['recipe']} | {r['file']} | {r['image']} | {r['ms_before']} | "
            f"{r['ms_with']} | {r['added']:+.1%} |"
        )


if __name__ == "__main__":
    main()
