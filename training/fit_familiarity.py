"""Give a trained segmentation model a familiarity score, without retraining (issue 25, item 1).

    python training/fit_familiarity.py plugins/inspect_plugins/industrial/models/steel.onnx \\
        --data ../shared/datasets/neu-steel --out runs/familiarity/steel
    python training/fit_familiarity.py MODEL.onnx --data D --other ../shared/datasets/camvid \\
        --shifted

1. Writes a copy of the model, and of each faster variant file its card ships (the int8 file),
   into OUT with one more output, ``features``: the mean and spread of the first encoder
   blocks' channels over the image (inspect_core/health/familiarity_graph.py). The logits are
   untouched; the model itself is never written.
2. Runs the copy over the card's training images (the train split less the card's
   validation_split) as the runtime feeds them (tiles, test-time copies), and over its
   held-out images (the validation_split: the val split, or the groups held out from
   training), and fits the familiarity (inspect_core/health/familiarity.py): the training
   images' mean and shrunk covariance, the threshold set on the held-out images to flag at most
   2% of images from the conditions trained on.
3. Writes ``<copy>.familiarity.npz`` beside each copy (the int8 copy's threshold is set again on
   its own features of the held-out images) and a summary, OUT/<name>.familiarity.json.

Prints the share of held-out images flagged (low by construction), the estimate on images the
threshold was not set on (two folds, by group where the images name groups), the share of the
seen groups' val images where the card lists them, and the time the extra output adds to one
network run. ``--other DATASET`` (repeatable): the share of another product's val images
flagged; ``--shifted``: of the held-out images blurred (Gaussian, sigma 3 px) and darkened
(half the brightness). The test split is never looked at.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
from _cli import parser, run

from inspect_core.cards import sha256_file
from inspect_core.data.datasets import Dataset, open_dataset, read_image
from inspect_core.data.groups import group_names
from inspect_core.errors import DataError
from inspect_core.health.familiarity import (
    FamiliarityModel,
    familiarity_path,
    fit,
    held_out_estimate,
    recalibrate,
    save,
)
from inspect_core.health.familiarity_graph import add_features
from inspect_core.health.familiarity_run import FeatureRun
from inspect_core.training.holdout import held_out_dataset, seen_dataset

Shift = Callable[[np.ndarray], np.ndarray]
SHIFTS: dict[str, Shift] = {
    "blurred": lambda im: cv2.GaussianBlur(im, (0, 0), 3),
    "darkened": lambda im: (im.astype(np.float32) * 0.5).astype(np.uint8),
}
BLOCK = 10  # held-out images per fold block where they name no groups (neighbouring frames)
CPU = ["CPUExecutionProvider"]


@dataclass(frozen=True)
class Timing:
    """One network run, median ms, of the model file and of its copy with features."""

    file: str
    size: str  # the input, width x height
    ms_without: float
    ms_with: float

    @property
    def added(self) -> float:
        return self.ms_with / self.ms_without - 1


@dataclass
class Summary:
    """What the run found, for the terminal and OUT/<name>.familiarity.json."""

    model: str
    copy: str
    trained_on: int
    held_out: int
    threshold: float
    calibrated: bool
    flagged_held_out: float
    flagged_held_out_two_fold: float | None
    flagged: dict[str, float] = field(default_factory=dict)  # other sets, shifts, variants
    timings: list[Timing] = field(default_factory=list)


def main() -> None:
    args = _parser().parse_args()
    model: Path = args.model
    card = json.loads(model.with_suffix(".json").read_text())
    out: Path = args.out or Path("runs/familiarity") / model.stem
    out.mkdir(parents=True, exist_ok=True)
    copy = out / model.name
    add_features(model, copy)
    print(f"{copy}: the model with a features output")
    runner = FeatureRun(copy, threads=args.threads)
    train = _subsample(training_images(card, args.data), args.max_train, args.seed)
    held = _subsample(held_out_dataset(card, args.data), args.max_held_out, args.seed)
    f_train = features_of(runner, train, "training")
    f_held = features_of(runner, held, "held-out")
    fam = fit(f_train, f_held, model_sha256=sha256_file(copy))
    print(f"{save(fam, familiarity_path(copy))}: fitted on {fam.trained_on} training images")
    s = Summary(
        str(model),
        str(copy),
        fam.trained_on,
        len(held),
        fam.threshold,
        fam.calibrated,
        fam.flagged(f_held),
        held_out_estimate(fam, f_held, folds(held)),
    )
    if (seen := seen_dataset(card, args.data)) is not None:
        seen = _subsample(seen, args.max_held_out, args.seed)
        s.flagged["seen groups"] = fam.flagged(features_of(runner, seen, "seen-groups"))
    for path in args.other:
        other = _subsample(open_dataset(path, "val"), args.max_other, args.seed)
        s.flagged[other.name] = fam.flagged(features_of(runner, other, other.name))
    if args.shifted:
        for name, shift in SHIFTS.items():
            s.flagged[name] = fam.flagged(features_of(runner, held, name, shift))
    s.timings.append(latency(model, copy, runner, held, args))
    variants(model, card, out, fam, held, args, s)
    (out / f"{model.stem}.familiarity.json").write_text(json.dumps(asdict(s), indent=1))
    report(s)


def training_images(card: dict[str, Any], data: str) -> Dataset:
    """The images the model was trained on: its dataset's train split less the images its
    card's validation_split names (held out from training, whichever way they were chosen)."""
    train = open_dataset(data, "train")
    held = set((card.get("validation_split") or {}).get("images") or [])
    samples = [s for s in train.samples if str(s.image.relative_to(train.root)) not in held]
    if not samples:
        raise DataError(f"{train.root}: no training image left once the held-out ones are out")
    expected = (card.get("dataset") or {}).get("train_images")
    if expected is not None and expected != len(samples):
        print(
            f"warning: {len(samples)} training images in {data}, the card says {expected}; "
            "is it the dataset the model was trained on?"
        )
    return replace(train, samples=samples)


def _subsample(ds: Dataset, n: int, seed: int) -> Dataset:
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
    runner: FeatureRun, ds: Dataset, what: str, shift: Shift | None = None
) -> np.ndarray:
    """The features of every image of ``ds`` (``shift`` applied first), one row each."""
    rows, start = [], time.perf_counter()
    for i, sample in enumerate(ds.samples):
        img = read_image(sample.image)
        rows.append(runner.image_features(shift(img) if shift else img))
        if (i + 1) % 100 == 0:
            print(f"  {what}: {i + 1}/{len(ds)} images", flush=True)
    print(f"{what}: {len(ds)} images in {time.perf_counter() - start:.0f} s", flush=True)
    return np.stack(rows)


def latency(
    model: Path, copy: Path, runner: FeatureRun, held: Dataset, args: argparse.Namespace
) -> Timing:
    """Median ms of one network run on the first held-out image's first input as the runtime
    feeds it (its first tile), by ``model`` (logits only) and by its ``copy`` (logits and
    features), alternating run by run. Both sessions have their threads sleep between runs
    (no spinning): a session's threads spinning on after its run would slow the other one's."""
    opts = ort.SessionOptions()
    if args.threads:
        opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sessions = [ort.InferenceSession(str(p), opts, providers=CPU) for p in (model, copy)]
    batch = runner.batches(read_image(held.samples[0].image))[0]
    feed = {sessions[0].get_inputs()[0].name: batch}
    times: list[list[float]] = [[], []]
    for _ in range(args.rounds + 1):  # the first round warms both up
        for session, spent in zip(sessions, times):
            t = time.perf_counter()
            session.run(None, feed)
            spent.append(time.perf_counter() - t)
    ms = [1000 * statistics.median(t[1:]) for t in times]
    return Timing(model.name, f"{batch.shape[3]}x{batch.shape[2]}", ms[0], ms[1])


def variants(
    model: Path,
    card: dict[str, Any],
    out: Path,
    fam: FamiliarityModel,
    held: Dataset,
    args: argparse.Namespace,
    s: Summary,
) -> None:
    """A copy with features of each faster variant file the card ships, its threshold set
    again on its own features of the held-out images (the network's weights are rounded)."""
    suffixes = {
        v["suffix"]
        for v in (card.get("variants") or {}).get("list") or []
        if v.get("shipped") and v.get("suffix") and v["suffix"] != ".onnx"
    }
    for suffix in sorted(suffixes):
        source = model.with_name(model.stem + suffix)
        if not source.is_file():
            print(f"warning: {source}: the card ships it but it is not there; skipped")
            continue
        copy = out / source.name
        add_features(source, copy)
        runner = FeatureRun(copy, threads=args.threads)
        f_held = features_of(runner, held, f"held-out ({suffix})")
        s.flagged[f"{suffix} file, fp32 threshold"] = fam.flagged(f_held)
        own = recalibrate(fam, f_held, sha256_file(copy))
        print(f"{save(own, familiarity_path(copy))}: threshold {own.threshold:.2f}")
        s.flagged[f"{suffix} file, own threshold"] = own.flagged(f_held)
        s.timings.append(latency(source, copy, runner, held, args))


def report(s: Summary) -> None:
    how = "the 2% quantile" if s.calibrated else "the farthest (too few images for 2%)"
    print(f"threshold {s.threshold:.2f}: {how} of {s.held_out} held-out images")
    print(f"held-out images flagged: {s.flagged_held_out:.1%} (the images it was set on)")
    if s.flagged_held_out_two_fold is not None:
        print(f"  on images it was not set on (two folds): {s.flagged_held_out_two_fold:.1%}")
    for name, share in s.flagged.items():
        print(f"{name}: {share:.1%} flagged")
    for t in s.timings:
        print(
            f"{t.file}, one network run at {t.size}: {t.ms_without:.1f} ms, with the features "
            f"output {t.ms_with:.1f} ms ({t.added:+.1%})"
        )


def _parser() -> argparse.ArgumentParser:
    ap = parser(__doc__)
    ap.add_argument("model", type=Path, help="the model's .onnx file, its card (.json) beside it")
    ap.add_argument("--data", required=True, help="the dataset folder it was trained on")
    ap.add_argument("--out", type=Path, help="folder for the copies [runs/familiarity/NAME]")
    ap.add_argument("--max-train", type=int, default=0, help="at most N training images [all]")
    ap.add_argument("--max-held-out", type=int, default=0, help="at most N held-out images")
    ap.add_argument("--other", action="append", default=[], help="another product's dataset")
    ap.add_argument("--max-other", type=int, default=40, help="its val images used [40]")
    ap.add_argument("--shifted", action="store_true", help="also blurred and darkened images")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads [all cores]")
    ap.add_argument("--rounds", type=int, default=20, help="timed runs for the latency")
    ap.add_argument("--seed", type=int, default=0, help="for the subsamples")
    return ap


if __name__ == "__main__":
    run(main)
