"""``inspect evaluate``: score a model on a dataset split."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np

from inspect_core.commands.predict import warn_unverified
from inspect_core.commands.progress import item_progress
from inspect_core.data.datasets import open_dataset
from inspect_core.data.frames import model_frame
from inspect_core.data.metrics import SegmentationScores
from inspect_core.runtime.inspector import InspectorBase
from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.runtime.postprocess import argmax_labels
from inspect_core.text import rich_text


def evaluate_model(
    model: OnnxModel,
    data: str | Path,
    split: str,
    tile: int = 0,
    preprocess=None,
    overlap: float = 0.25,
) -> dict:
    """Scores of a bare ``model`` on a split (the training tools score a model whose metadata
    they edit). ``preprocess`` is applied to each image, and its mask resized to match."""

    def probabilities(img: np.ndarray) -> np.ndarray:
        return model.probabilities(img, tile=tile or None, overlap=overlap)

    return _score(data, split, model.classes, model.path, preprocess, probabilities)


def evaluate_inspector(inspector: InspectorBase, data: str | Path, split: str) -> dict:
    """Scores of a recipe's chain on a split, as in production: its preprocessing (each mask
    resized to match) and its model step (tile size, overlap, test-time copies)."""
    return _score(
        data,
        split,
        inspector.classes,
        inspector.recipe.model,
        inspector.preprocess,
        inspector.probabilities,
    )


def _score(
    data: str | Path,
    split: str,
    classes: list[str],
    model_path: Path,
    preprocess: Callable[[np.ndarray], np.ndarray] | None,
    probabilities: Callable[[np.ndarray], np.ndarray],
) -> dict:
    ds = open_dataset(data, split)
    if len(ds.classes) != len(classes):
        from inspect_core.errors import ModelError

        raise ModelError(
            f"{model_path}: the model has {len(classes)} classes "
            f"{classes}, the dataset {len(ds.classes)} {ds.classes}"
        )
    scores = SegmentationScores(ds.classes)
    with item_progress(len(ds), f"evaluating {ds.name}/{split}") as advance:  # shown literally
        for i in range(len(ds)):
            img, mask = ds.load(i)
            if preprocess is not None:
                img, mask = model_frame(img, mask, preprocess, ds.samples[i].image)
            scores.update(argmax_labels(probabilities(img)), mask, ds.ignore_index)
            advance()
    return scores.summary()


@click.command()
@click.option(
    "--model",
    "model_path",
    required=True,
    help="ONNX model file, or PLUGIN:RECIPE (then with the recipe's preprocessing, "
    "tile size and overlap, as in production).",
)
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--split", default="val", show_default=True, help="val, test or train.")
@click.option("--tile", default=0, help="Tile size for large images (0 = the model's).")
@click.option("--threads", default=0, help="ONNX Runtime threads (0 = all cores).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate(model_path, data, split, tile, threads, as_json):
    """Per-class Dice, IoU, precision and recall over a whole split, plus image-level recall
    and false-reject rate."""
    from inspect_core.params import LIMITS

    if why := LIMITS["recipe"][""]["tile"].problem("--tile", tile):
        raise click.BadParameter(why, param_hint="--tile")
    if ":" in model_path and not Path(model_path).exists():
        from inspect_core.plugin_api.manager import get_registry
        from inspect_core.plugin_api.resolve import find_recipe
        from inspect_core.runtime.inspector import Inspector

        plugin, _, name = model_path.partition(":")
        recipe = find_recipe(plugin, name)
        if tile:
            recipe = recipe.with_overrides({"tile": tile})
        # the recipe's chain, refused if the model is not its card's
        inspector = Inspector(recipe, get_registry().rules, threads=threads)
        warn_unverified(inspector.model_check)
        s = evaluate_inspector(inspector, data, split)
    else:
        model = OnnxModel(model_path, threads=threads)  # refused if not its card's
        warn_unverified(model.check)
        s = evaluate_model(model, data, split, tile)
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=rich_text(f"{Path(data).name}/{split}: {s['images']} images"))
    for col in ("class", "dice", "iou", "precision", "recall"):
        t.add_column(col, justify="right" if col != "class" else "left")
    for name, v in s["per_class"].items():  # class names come from the dataset's files
        t.add_row(rich_text(name), *(f"{v[k]:.4f}" for k in ("dice", "iou", "precision", "recall")))
    con = Console()
    con.print(t)
    con.print(
        f"mIoU {s['miou']:.4f}  mean Dice {s['mean_dice']:.4f}  pixel accuracy "
        f"{s['pixel_accuracy']:.4f}  image recall {_rate(s, 'image_recall')}  "
        f"false-reject rate {_rate(s, 'false_reject_rate')}",
        highlight=False,
    )


def _rate(s: dict, key: str) -> str:
    """An image-level rate for the terminal: the number, or n/a with the reason."""
    if s[key] is None:
        return f"n/a ({s.get('undefined', {}).get(key, 'no images to count')})"
    return f"{s[key]:.4f}"
