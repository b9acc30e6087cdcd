"""Pick a shipped recipe's sample images from its dataset's *validation* split and write them
into the plugin with their expected verdicts.

    python training/pick_samples.py industrial steel [--n 4] [--data ../shared/datasets]

The same as ``inspect plugin samples industrial:steel --data ../shared/datasets/neu-steel
--write`` (the dataset folder is the recipe's ``dataset`` under ``--data``); the picking is
:mod:`inspect_core.plugin_api.samples`. The expected verdict of an image is what the recipe's
rules say about its ground-truth mask; only images where the model's verdict agrees are taken.
"""

from __future__ import annotations

from pathlib import Path

from _cli import parser, run

from inspect_core.data.datasets import open_dataset
from inspect_core.plugin_api.manager import load_plugins
from inspect_core.plugin_api.resolve import find_recipe
from inspect_core.plugin_api.samples import pick_samples, write_samples
from inspect_core.runtime.inspector import Inspector


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("plugin")
    ap.add_argument("recipe")
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--data", default="../shared/datasets")
    ap.add_argument("--scan", type=int, default=60, help="validation images to look at")
    args = ap.parse_args()
    recipe = find_recipe(args.plugin, args.recipe)
    inspector = Inspector(recipe, load_plugins().rules)
    ds = open_dataset(Path(args.data) / recipe.dataset, "val")
    picks = pick_samples(inspector, ds, args.n, args.scan)
    for p in picks:
        print(f"{p.verdict:6} {p.file_name(recipe.name)}")
    write_samples(picks, recipe.name, recipe.source)


if __name__ == "__main__":
    run(main)
