"""Give a trained segmentation model a familiarity score, without retraining, and measure it
(issue 25, item 1). The fit is ``inspect health familiarity`` (inspect_core/health/
familiarity_fit.py); this script adds the study that bench/README.md reports:

    python training/fit_familiarity.py plugins/inspect_plugins/industrial/models/steel.onnx \\
        --data ../shared/datasets/neu-steel --out runs/familiarity/steel \\
        --other ../shared/datasets/camvid --shifted

1. Writes into OUT a copy of the model, and of each faster variant file its card ships, with
   one more output, ``features``; fits the familiarity on the card's training images and sets
   its threshold on its held-out images (the validation_split); the card with the copies'
   sha256 beside them. The model itself is never written.
2. Prints the share of held-out images flagged (low by construction), the estimate on images the
   threshold was not set on (two folds, by group where the images name groups), the share of the
   seen groups' val images where the card lists them, the int8 file's share at the fp32 file's
   threshold, and the time the extra output adds to one network run. ``--other DATASET``
   (repeatable): the share of another product's val images flagged; ``--shifted``: of the
   held-out images blurred (Gaussian, sigma 3 px), darkened (half the brightness) and
   over-exposed (twice the brightness, clipped).
3. Writes a summary, OUT/<name>.familiarity.json, and the features of every set of images,
   OUT/<name>.features.npz (to study other fits). The test split is never looked at.
4. ``--install``: puts the copies, their familiarity files and the card in place of the
   model's (what ``inspect health familiarity --in-place`` does).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from _cli import parser, run

from inspect_core.data.datasets import Dataset, open_dataset, read_image
from inspect_core.health.familiarity_fit import (
    FitResult,
    Shift,
    features_of,
    fit_model,
    install,
    read_card,
    subsample,
)
from inspect_core.health.familiarity_run import FeatureRun
from inspect_core.training.holdout import held_out_dataset, seen_dataset

SHIFTS: dict[str, Shift] = {
    "blurred": lambda im: cv2.GaussianBlur(im, (0, 0), 3),
    "darkened": lambda im: (im.astype(np.float32) * 0.5).astype(np.uint8),
    "over-exposed": lambda im: cv2.convertScaleAbs(im, alpha=2.0),  # x2, clipped at 255
}
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
    out: Path = args.out or Path("runs/familiarity") / model.stem
    start = time.perf_counter()
    r = fit_model(
        model, args.data, out, max_train=args.max_train, seed=args.seed, threads=args.threads
    )
    print(
        f"{r.copy}: fitted on {r.trained_on} training images in {time.perf_counter() - start:.0f} s"
    )
    fam, card = r.familiarity, read_card(model)
    assert fam is not None
    runner = FeatureRun(r.copy, threads=args.threads)
    held = held_out_dataset(card, args.data)
    s = Summary(
        str(model),
        str(r.copy),
        r.trained_on,
        r.held_out,
        fam.threshold,
        r.calibrated,
        r.files[0].flagged_held_out,
        r.flagged_held_out_two_fold,
    )
    kept = {"held-out": r.held_out_features[r.copy.name]}
    if (seen := seen_dataset(card, args.data)) is not None:
        kept["seen groups"] = _features(runner, subsample(seen, args.max_other * 5, args.seed))
    for path in args.other:
        other = subsample(open_dataset(path, "val"), args.max_other, args.seed)
        kept[other.name] = _features(runner, other)
    if args.shifted:
        for name, shift in SHIFTS.items():
            kept[name] = _features(runner, held, shift)
    for name, f in kept.items():
        if name != "held-out":
            s.flagged[name] = fam.flagged(f)
    for f in r.files[1:]:
        s.flagged[f"{f.file}, fp32 threshold"] = fam.flagged(r.held_out_features[f.file])
        s.flagged[f"{f.file}, own threshold"] = f.flagged_held_out
    np.savez_compressed(out / f"{model.stem}.features.npz", **kept)
    s.timings = [
        latency(model.with_name(f.file), out / f.file, runner, held, args) for f in r.files
    ]
    (out / f"{model.stem}.familiarity.json").write_text(json.dumps(asdict(s), indent=1))
    report(s, r)
    if args.install:
        for path in install(r):
            print(f"installed {path}")


def _features(runner: FeatureRun, ds: Dataset, shift: Shift | None = None) -> np.ndarray:
    start = time.perf_counter()
    f = features_of(runner, ds, shift)
    print(f"{ds.name} ({len(ds)} images): {time.perf_counter() - start:.0f} s", flush=True)
    return f


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


def report(s: Summary, r: FitResult) -> None:
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
    print(f"written: {r.copy.parent}")


def _parser() -> argparse.ArgumentParser:
    ap = parser(__doc__)
    ap.add_argument("model", type=Path, help="the model's .onnx file, its card (.json) beside it")
    ap.add_argument("--data", required=True, help="the dataset folder it was trained on")
    ap.add_argument("--out", type=Path, help="folder for the copies [runs/familiarity/NAME]")
    ap.add_argument("--max-train", type=int, default=0, help="at most N training images [all]")
    ap.add_argument("--other", action="append", default=[], help="another product's dataset")
    ap.add_argument("--max-other", type=int, default=40, help="its val images used [40]")
    ap.add_argument("--shifted", action="store_true", help="also blurred, darkened, over-exposed")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads [all cores]")
    ap.add_argument("--rounds", type=int, default=20, help="timed runs for the latency")
    ap.add_argument("--seed", type=int, default=0, help="for the subsamples")
    ap.add_argument("--install", action="store_true", help="then put the copies in place")
    return ap


if __name__ == "__main__":
    run(main)
