"""Give an existing segmentation model its familiarity score without retraining (issue 25,
item 1): ``inspect health familiarity`` and training/fit_familiarity.py are built on it.

:func:`fit_model` writes into a folder a copy of the model, and of each faster variant file its
card ships, with the ``features`` output added (:mod:`~inspect_core.health.familiarity_graph`;
the logits are untouched), runs the copy over the card's training images (the train split less
the card's ``validation_split``) as the runtime feeds them, fits the familiarity on them and
sets its threshold on the held-out images (the ``validation_split``), each variant copy's again
on its own features of them; each ``.familiarity.npz`` beside its copy, and the card, with the
copies' sha256 and a ``familiarity`` entry, beside them: a folder ``inspect model add`` takes.
:func:`install` puts the copies in place of the model's files. The model itself is never
written by :func:`fit_model`, and the test split is never looked at.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from inspect_core.cards import sha256_file
from inspect_core.data.datasets import Dataset, open_dataset, read_image
from inspect_core.data.groups import group_names
from inspect_core.errors import DataError, ModelError
from inspect_core.health.familiarity import (
    FamiliarityModel,
    familiarity_path,
    fit,
    held_out_estimate,
    recalibrate,
    save,
)
from inspect_core.health.familiarity_graph import POOLED_BLOCKS, add_features, has_features
from inspect_core.health.familiarity_run import FeatureRun
from inspect_core.training.holdout import held_out_dataset

Shift = Callable[[np.ndarray], np.ndarray]
Advance = Callable[[int], None]  # moves a progress bar on by n images
BLOCK = 10  # held-out images per fold block where they name no groups (neighbouring frames)


@dataclass(frozen=True)
class Tiling:
    """How the recipe cuts an image into network runs (its ``tile``, ``tile_overlap``): the
    features are pooled over those runs, so they are fitted as the recipe will run them."""

    tile: int | None = None  # None: the model's own tile size
    overlap: float = 0.25


@dataclass(frozen=True)
class FileFit:
    """One file's familiarity: the copy with features, its threshold, and the share of the
    held-out images it flags."""

    file: str  # the copy's name
    threshold: float
    flagged_held_out: float


@dataclass
class FitResult:
    """What :func:`fit_model` made and found."""

    model: Path  # the model it was made from
    copy: Path  # its copy with the features output (the card beside it)
    trained_on: int
    held_out: int
    held_out_from: str  # the card's validation_split source: "val split", "held-out groups"
    calibrated: bool  # enough held-out images for the 2% quantile (else their farthest)
    flagged_held_out_two_fold: float | None  # on images the threshold was not set on
    files: list[FileFit] = field(default_factory=list)  # the model's copy first, then variants
    familiarity: FamiliarityModel | None = None  # the model copy's
    tiling: Tiling = Tiling()
    # each file's features of the held-out images, by file name (for a caller's study)
    held_out_features: dict[str, np.ndarray] = field(default_factory=dict)

    def card_entry(self) -> dict[str, Any]:
        """The card's ``familiarity`` entry: what was fitted on what, and how it flags."""
        return {
            "features": {"blocks": [f"enc.{b}" for b in POOLED_BLOCKS], "pool": "mean,std"},
            "tiles": {"tile": self.tiling.tile, "overlap": self.tiling.overlap},
            "score": "Mahalanobis distance, Ledoit-Wolf covariance of log features",
            "trained_on": self.trained_on,
            "held_out": self.held_out,
            "held_out_from": self.held_out_from,
            "threshold_rule": "2% quantile" if self.calibrated else "farthest held-out image",
            "flagged_held_out_two_fold": self.flagged_held_out_two_fold,
            "files": [asdict(f) for f in self.files],
        }


def training_images(card: dict[str, Any], data: str) -> Dataset:
    """The images the model was trained on: its dataset's train split less the images its
    card's validation_split names (held out from training, whichever way they were chosen)."""
    train = open_dataset(data, "train")
    held = set((card.get("validation_split") or {}).get("images") or [])
    samples = [s for s in train.samples if str(s.image.relative_to(train.root)) not in held]
    if not samples:
        raise DataError(f"{train.root}: no training image left once the held-out ones are out")
    return replace(train, samples=samples)


def subsample(ds: Dataset, n: int, seed: int) -> Dataset:
    """At most ``n`` of the images of ``ds`` (0: all), a seeded random choice in file order."""
    if not n or len(ds) <= n:
        return ds
    keep = sorted(random.Random(seed).sample(range(len(ds)), n))
    return ds.subset(keep, ds.split)


def folds(ds: Dataset) -> np.ndarray:
    """The fold (0 or 1) of each image: whole groups, alternating in name order, where the
    images name two groups or more; else alternating blocks of neighbouring images."""
    if ds.groups:
        try:
            names = group_names(ds)
        except DataError:
            names = []
        order = sorted(set(names))
        if len(order) >= 2:
            return np.array([order.index(g) % 2 for g in names])
    block = BLOCK if len(ds) >= 4 * BLOCK else 1  # few images: every other one
    return (np.arange(len(ds)) // block) % 2


def features_of(
    runner: FeatureRun,
    ds: Dataset,
    shift: Shift | None = None,
    advance: Advance | None = None,
    tiling: Tiling = Tiling(),
) -> np.ndarray:
    """The features of every image of ``ds`` (``shift`` applied first), one row each, the
    image cut as ``tiling`` says."""
    rows = []
    for sample in ds.samples:
        img = read_image(sample.image)
        img = shift(img) if shift else img
        rows.append(runner.image_features(img, tiling.tile, tiling.overlap))
        if advance is not None:
            advance(1)
    return np.stack(rows)


def shipped_variants(model: Path, card: dict[str, Any]) -> list[Path]:
    """The faster variant files the card ships (``tile.int8.onnx``); :class:`ModelError` for
    one that is not there (a station running it would have no familiarity check)."""
    suffixes = {
        v["suffix"]
        for v in (card.get("variants") or {}).get("list") or []
        if v.get("shipped") and v.get("suffix") and v["suffix"] != ".onnx"
    }
    files = [model.with_name(model.stem + s) for s in sorted(suffixes)]
    for f in files:
        if not f.is_file():
            raise ModelError(
                f"{f}: its card ships this variant but the file is not there; restore it "
                "(reinstall the plugin) or rerun training/variants.py, then fit again"
            )
    return files


def read_card(model: Path) -> dict[str, Any]:
    """The card beside ``model``: what the model was trained on and validated with."""
    card_path = model.with_suffix(".json")
    try:
        card: dict[str, Any] = json.loads(card_path.read_text())
    except FileNotFoundError:
        raise ModelError(
            f"{model}: no model card ({card_path.name}) beside it to say which images it was "
            "trained and validated on"
        ) from None
    except (OSError, ValueError) as e:
        raise ModelError(f"{card_path}: not a readable model card ({e})") from e
    return card


def images_to_fit(card: dict[str, Any], data: str, max_train: int, seed: int) -> int:
    """How many images :func:`fit_model` runs the model over (for a progress bar)."""
    train = subsample(training_images(card, data), max_train, seed)
    held = held_out_dataset(card, data)
    variants = [v for v in (card.get("variants") or {}).get("list") or [] if v.get("shipped")]
    files = 1 + sum(1 for v in variants if v.get("suffix") != ".onnx")
    return len(train) + len(held) * files


def fit_model(
    model: Path,
    data: str,
    out: Path,
    *,
    max_train: int = 0,
    seed: int = 0,
    threads: int = 0,
    advance: Advance | None = None,
    tiling: Tiling = Tiling(),
) -> FitResult:
    """Fit the familiarity of ``model`` (its card beside it) on the dataset folder ``data`` it
    was trained on, writing the copies, their familiarity files and the card into ``out``
    (module docstring). ``max_train``: at most that many training images (a seeded choice)."""
    card_path = model.with_suffix(".json")
    card = read_card(model)
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() == model.parent.resolve():
        raise ModelError(f"{out}: the model's own folder; write the copies to another folder")
    copy = out / model.name
    _with_features(model, copy)
    runner = FeatureRun(copy, threads=threads)
    train = subsample(training_images(card, data), max_train, seed)
    held = held_out_dataset(card, data)
    f_train = features_of(runner, train, advance=advance, tiling=tiling)
    f_held = features_of(runner, held, advance=advance, tiling=tiling)
    fam = fit(f_train, f_held, model_sha256=sha256_file(copy))
    save(fam, familiarity_path(copy))
    result = FitResult(
        model,
        copy,
        fam.trained_on,
        len(held),
        str((card.get("validation_split") or {}).get("source", "val split")),
        fam.calibrated,
        held_out_estimate(fam, f_held, folds(held)),
        [FileFit(copy.name, fam.threshold, fam.flagged(f_held))],
        fam,
        tiling,
        {copy.name: f_held},
    )
    for source in shipped_variants(model, card):
        variant = out / source.name
        _with_features(source, variant)
        runner_v = FeatureRun(variant, threads=threads)
        held_v = features_of(runner_v, held, advance=advance, tiling=tiling)
        own = recalibrate(fam, held_v, sha256_file(variant))
        save(own, familiarity_path(variant))
        result.files.append(FileFit(variant.name, own.threshold, own.flagged(held_v)))
        result.held_out_features[variant.name] = held_v
    _write_card(card, card_path, out, result)
    return result


def _with_features(source: Path, target: Path) -> None:
    """``target``: ``source`` with the features output added, or as it is where it has one
    (a model fitted before: fitted again, e.g. with a recipe's tiles)."""
    if has_features(source):
        shutil.copyfile(source, target)
    else:
        add_features(source, target)


def _write_card(card: dict[str, Any], card_path: Path, out: Path, result: FitResult) -> None:
    """The model's card, with the copies' sha256 where it names the files and the
    ``familiarity`` entry, into ``out``."""
    card = json.loads(json.dumps(card))  # a deep copy
    card["sha256"] = sha256_file(result.copy)
    variants = card.get("variants") or {}
    if isinstance(variants.get("reference"), dict):
        variants["reference"]["sha256"] = card["sha256"]
    for v in variants.get("list") or []:
        target = out / (result.copy.stem + str(v.get("suffix", "")))
        if v.get("suffix") != ".onnx" and target.is_file():
            v["sha256"] = sha256_file(target)
    card["familiarity"] = result.card_entry()
    (out / card_path.name).write_text(json.dumps(card, indent=2) + "\n")


def install(result: FitResult) -> list[Path]:
    """Put the copies of ``result`` (and their familiarity files and card) in place of the
    model's files; returns the files written. Each file is replaced whole; the card last, so a
    stop midway leaves files their card refuses (the model check says so), never a card that
    vouches for the wrong file."""
    source, target = result.copy.parent, result.model.parent
    written = []
    for f in result.files:
        for name in (f.file, familiarity_path(f.file).name):
            tmp = target / (name + ".tmp")
            shutil.copyfile(source / name, tmp)
            tmp.replace(target / name)
            written.append(target / name)
    card = result.model.with_suffix(".json").name
    tmp = target / (card + ".tmp")
    shutil.copyfile(source / card, tmp)
    tmp.replace(target / card)
    return [*written, target / card]
