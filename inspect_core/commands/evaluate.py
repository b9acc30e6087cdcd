"""``inspect evaluate``: score a model on a dataset split."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np

from inspect_core.commands.predict import warn_unverified
from inspect_core.commands.progress import item_progress
from inspect_core.data.datasets import Dataset, open_dataset
from inspect_core.data.detection_metrics import detection_scores
from inspect_core.data.frames import model_frame
from inspect_core.data.groups import group_names, with_groups
from inspect_core.data.metrics import SegmentationScores
from inspect_core.runtime.inspector import InspectorBase
from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.runtime.postprocess import argmax_labels
from inspect_core.text import rich_text

if TYPE_CHECKING:
    from rich.console import Console

log = logging.getLogger("inspect.evaluate")


def evaluate_model(
    model: OnnxModel,
    data: str | Path | Dataset,
    split: str,
    tile: int = 0,
    preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    overlap: float = 0.25,
    by_group: bool = False,
) -> dict[str, Any]:
    """Scores of a bare ``model`` on a split (the training tools score a model whose metadata
    they edit; ``data`` may be a :class:`Dataset` already, e.g. the held-out groups a card
    names). ``preprocess`` is applied to each image, and its mask resized to match."""

    def probabilities(img: np.ndarray) -> np.ndarray:
        return model.probabilities(img, tile=tile or None, overlap=overlap)

    return _score(data, split, model.classes, model.path, preprocess, probabilities, by_group)


def evaluate_inspector(
    inspector: InspectorBase, data: str | Path | Dataset, split: str, by_group: bool = False
) -> dict[str, Any]:
    """Scores of a recipe's chain on a split, as in production: its preprocessing (each mask
    resized to match) and its model step (tile size, overlap, test-time copies)."""
    return _score(
        data,
        split,
        inspector.classes,
        inspector.recipe.model,
        inspector.preprocess,
        inspector.probabilities,
        by_group,
    )


def _score(
    data: str | Path | Dataset,
    split: str,
    classes: list[str],
    model_path: Path,
    preprocess: Callable[[np.ndarray], np.ndarray] | None,
    probabilities: Callable[[np.ndarray], np.ndarray],
    by_group: bool = False,
) -> dict[str, Any]:
    """The summary of :class:`SegmentationScores` over ``data``'s ``split``; with
    ``by_group`` also ``by_group`` (each group's summary) and ``group_spread``."""
    ds = data if isinstance(data, Dataset) else open_dataset(data, split)
    check_classes(list(classes), ds, model_path)
    names = group_names(ds) if by_group else []
    scores = SegmentationScores(ds.classes)
    groups = {g: SegmentationScores(ds.classes) for g in sorted(set(names))}
    maps: list[np.ndarray] = []  # each image's defect score: 1 - P(background)
    masks: list[np.ndarray] = []
    with item_progress(len(ds), f"evaluating {ds.name}/{ds.split}") as advance:  # shown literally
        for i in range(len(ds)):
            img, mask = ds.load(i)
            if preprocess is not None:
                img, mask = model_frame(img, mask, preprocess, ds.samples[i].image)
            probs = probabilities(img)
            pred = argmax_labels(probs)
            scores.update(pred, mask, ds.ignore_index)
            maps.append((1.0 - probs[0]).astype(np.float32))
            masks.append(mask)
            if names:
                groups[names[i]].update(pred, mask, ds.ignore_index)
            advance()
    out = scores.summary()
    # the detection scores of a good-only model, for a segmentation model too: every class but
    # the background is a defect, the score of a pixel is 1 - P(background)
    out.update(detection_scores(maps, masks, ds.ignore_index).as_json())
    if by_group:
        out["by_group"] = {g: s.summary() for g, s in groups.items()}
        out["group_spread"] = spread(out["by_group"])
    return out


def check_classes(classes: list[str], ds: Dataset, model_path: Path) -> None:
    """Mask value i must mean the model's class i: ModelError for another number of classes or
    the same names in another order; other names (a dataset that renamed a class) are logged."""
    from inspect_core.errors import ModelError

    if classes == list(ds.classes):
        return
    where = f"{model_path}: the model has {len(classes)} classes {classes}, the dataset"
    where += f" ({ds.root / 'classes.json'}) {len(ds.classes)} {ds.classes}"
    moved = [c for c in classes if c in ds.classes and classes.index(c) != ds.classes.index(c)]
    if len(classes) != len(ds.classes) or moved:
        how = f"{moved} in another place" if len(classes) == len(ds.classes) else "another number"
        raise ModelError(
            f"{where}: {how}: mask values would be scored as other classes; evaluate on "
            "the data it was trained for"
        )
    log.warning("%s: other names; scored by index, class i against mask value i", where)


def spread(by_group: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """How far the groups' mIoU lie apart: lowest, highest, mean, standard deviation, and the
    worst group by name."""
    m = {g: s["miou"] for g, s in by_group.items()}
    v = np.array(list(m.values()), np.float64)
    return {
        "groups": len(m),
        "min_miou": float(v.min()),
        "max_miou": float(v.max()),
        "mean_miou": float(v.mean()),
        "std_miou": float(v.std()),
        "worst_group": min(m, key=lambda g: m[g]),
    }


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
@click.option(
    "--by-group",
    is_flag=True,
    help="Also score every group (sequence, tile, lot, day, camera) apart, and their spread "
    '(needs classes.json\'s "groups" pattern or --groups).',
)
@click.option(
    "--groups",
    default=None,
    help="Groups pattern: a regex whose one capture group names an image's group in its file "
    "stem, e.g. '^(tile\\d+)_'. [default: classes.json's \"groups\"]",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate(
    model_path: str,
    data: str,
    split: str,
    tile: int,
    threads: int,
    by_group: bool,
    groups: str | None,
    as_json: bool,
) -> None:
    """Per-class Dice, IoU, precision and recall over a whole split, plus image-level recall
    and false-reject rate; with --by-group, each group's scores and their spread."""
    from inspect_core.params import TILE

    if tile is not None and not TILE.fits(tile):
        raise click.BadParameter(f"--tile {TILE.refusal(tile)}", param_hint="--tile")
    ds = open_dataset(data, split)
    if by_group or groups:
        ds = with_groups(ds, groups)
        group_names(ds)  # a pattern that misses images is refused before anything runs
    if ":" in model_path and not Path(model_path).exists():
        s = evaluate_inspector(_recipe_chain(model_path, tile, threads), ds, split, by_group)
    else:
        model = OnnxModel(model_path, threads=threads)  # refused if not its card's
        warn_unverified(model.check)
        s = _score(ds, split, model.classes, model.path, None, _model_probs(model, tile), by_group)
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    _print(s, f"{Path(data).name}/{split}")


def _recipe_chain(spec: str, tile: int, threads: int) -> InspectorBase:
    """PLUGIN:RECIPE's chain, refused if its model is not its card's."""
    from inspect_core.plugin_api.manager import get_registry
    from inspect_core.plugin_api.resolve import find_recipe
    from inspect_core.runtime.inspector import Inspector

    plugin, _, name = spec.partition(":")
    recipe = find_recipe(plugin, name)
    if tile:
        recipe = recipe.with_overrides({"tile": tile})
    inspector = Inspector(recipe, get_registry().rules, threads=threads)
    warn_unverified(inspector.model_check)
    return inspector


def _model_probs(model: OnnxModel, tile: int) -> Callable[[np.ndarray], np.ndarray]:
    def probabilities(img: np.ndarray) -> np.ndarray:
        return model.probabilities(img, tile=tile or None)

    return probabilities


def _print(s: dict[str, Any], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=rich_text(f"{title}: {s['images']} images"))
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
    con.print(
        "detection (score 1 - P(background)): "
        + "  ".join(
            f"{label} {_score_text(s.get(key))}"
            for label, key in (
                ("image AUROC", "image_auroc"),
                ("pixel AUROC", "pixel_auroc"),
                ("AUPRO", "aupro"),
                ("F1 max", "f1_max"),
            )
        ),
        highlight=False,
    )
    if "by_group" in s:
        _print_groups(con, s["by_group"], s["group_spread"])


def _print_groups(con: Console, by_group: dict[str, dict[str, Any]], sp: dict[str, Any]) -> None:
    """One row per group: images, mIoU, mean Dice and its weakest class; then the spread."""
    from rich.table import Table

    t = Table(title="by group")
    for col in ("group", "images", "mIoU", "mean Dice", "weakest class (IoU)"):
        t.add_column(col, justify="left" if col in ("group", "weakest class (IoU)") else "right")
    for g, v in by_group.items():  # group names come from file names: escaped
        weak = min(v["per_class"].items(), key=lambda kv: kv[1]["iou"])
        t.add_row(
            rich_text(g),
            str(v["images"]),
            f"{v['miou']:.4f}",
            f"{v['mean_dice']:.4f}",
            rich_text(f"{weak[0]} ({weak[1]['iou']:.3f})"),
        )
    con.print(t)
    con.print(
        f"{sp['groups']} groups: mIoU {sp['min_miou']:.4f} to {sp['max_miou']:.4f}, mean "
        f"{sp['mean_miou']:.4f}, std {sp['std_miou']:.4f}; worst",
        rich_text(sp["worst_group"]),
        highlight=False,
    )


def _rate(s: dict[str, Any], key: str) -> str:
    """An image-level rate for the terminal: the number, or n/a with the reason."""
    if s[key] is None:
        return f"n/a ({s.get('undefined', {}).get(key, 'no images to count')})"
    return f"{s[key]:.4f}"


def _score_text(value: float | None) -> str:
    """A detection score for the terminal: n/a where the images cannot give it (no defect, or
    no good image)."""
    return "n/a" if value is None else f"{value:.4f}"
