"""``inspect train``: fit a U-Net on a dataset folder (needs the ``train`` extra: torch)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from inspect_core.commands.train_anomaly import (
    FEATURES_HELP,
    FRR_HELP,
    KIND_HELP,
    REFINE_HELP,
    refuse_misplaced,
    run_anomaly,
)
from inspect_core.errors import InspectError

EPILOG = """\b
Options not given are chosen for the run, logged at its start and recorded in model.json
("settings_chosen"). A fine-tune (--init-from) by default trains the network of the weights
it starts from, at lr 1e-3, for 30 minutes with the cosine schedule fitted to them, without
early stop; give --epochs to train by epochs instead."""


@click.command(epilog=EPILOG)
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Dataset folder (classes.json + train/ val/ images and masks, or MVTec AD). Without "
    "a val/ split about 15% of train is held out to validate on (whole groups where "
    'classes.json has a "groups" pattern); test/ is never used to pick the model.',
)
@click.option(
    "--groups",
    default=None,
    help="Which group (sequence, tile, lot, day, camera) each image comes from: a regex whose "
    "one capture group names it in the file stem, e.g. '^(tile\\d+)_'. [default: classes.json's "
    '"groups"]',
)
@click.option(
    "--val-groups",
    default=None,
    help="Validate on these groups (comma-separated), none of whose images is trained on: "
    "train and val are pooled, the checkpoint is picked on these groups, and the val split's "
    "other images give the same-distribution score beside it in model.json.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder to write.")
@click.option(
    "--init-from",
    default=None,
    help="Start from trained weights: PLUGIN:RECIPE of an installed plugin (e.g. "
    "industrial:steel) or a .pt/.onnx path. Fine-tunes: the options below that are not given "
    "take the fine-tune defaults, and the network those weights belong to.",
)
@click.option(
    "--init-partial",
    is_flag=True,
    help="With --init-from: start the tensors that do not fit from scratch instead of "
    "stopping (the head, for other classes, and the first layer, for other image channels, "
    "are adapted without it).",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=0),
    default=None,
    help="Passes over the training set; 0 = no limit (a time budget ends the run). "
    "[default: 40; with --init-from 0, and --max-minutes 30]",
)
@click.option(
    "--max-minutes",
    type=click.FloatRange(min=0),
    default=None,
    help="Time budget: stop after this long, keeping the best; the cosine learning-rate "
    "schedule is fitted to it. [default: 30 with --init-from and no --epochs, else 0 = none]",
)
@click.option(
    "--lr",
    type=float,
    default=None,
    help="Peak learning rate (Adam; warm-up, then cosine). [default: 2e-3; 1e-3 with "
    "--init-from: a high rate would undo the trained features while the new head settles]",
)
@click.option(
    "--patience",
    type=click.IntRange(min=0),
    default=None,
    help="Stop after this many epochs without a better val mIoU; 0 = never. [default: 8; "
    "0 with --init-from: the schedule runs to its end, the best epoch is kept]",
)
@click.option(
    "--size",
    type=click.IntRange(min=16),
    default=None,
    help="Training crop in pixels. [default: the images' shorter side (median) rounded down "
    "to a multiple of 32, between 64 and 256]",
)
@click.option("--batch", default=8, show_default=True, help="Images per optimiser step.")
@click.option(
    "--width",
    type=click.IntRange(min=1),
    default=None,
    help="Channels at the first level. [default: 16; with --init-from, that of its weights]",
)
@click.option(
    "--depth",
    type=click.IntRange(min=1),
    default=None,
    help="Down-sampling steps. [default: 4; with --init-from, that of its weights]",
)
@click.option(
    "--stem-stride",
    default=None,
    type=click.Choice(["1", "2"]),
    help="2 runs the U-Net at half resolution (faster; for defects wider than a few px). "
    "[default: 1; with --init-from, that of its weights]",
)
@click.option(
    "--arch",
    default=None,
    type=click.Choice(["enhanced", "plain"]),
    help="[default: enhanced; with --init-from, that of its weights]",
)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--augment",
    "augment_json",
    default=None,
    help='Augmentation overrides as JSON, e.g. \'{"rotate": 30, "rotate90": true}\'. '
    "[default: flips, rotation 15, scale 0.15, brightness/contrast 0.2, noise; "
    "'{\"vflip\": false}' for scenes with an up and down]",
)
@click.option(
    "--loss",
    default="dice_ce",
    show_default=True,
    type=click.Choice(["dice_ce", "lovasz_ce"]),
    help="dice_ce: Dice + cross-entropy; lovasz_ce: Lovász-softmax + cross-entropy, which "
    "follows the IoU itself (to fine-tune a trained model with --init-from).",
)
@click.option("--workers", default=1, show_default=True, help="Data loading processes.")
@click.option(
    "--threads",
    default=0,
    show_default=True,
    help="Torch threads (0 = all cores; 1 is steadier on a machine shared with other work).",
)
@click.option(
    "--val-max-side",
    default=0,
    show_default=True,
    help="Validate on images downscaled to this side (0 = native).",
)
@click.option(
    "--val-every",
    default=1,
    show_default=True,
    help="Validate every N epochs (validating at native size takes time from training).",
)
@click.option(
    "--steps-per-epoch",
    type=click.IntRange(min=0),
    default=None,
    help="Batches per epoch; 0 = one pass over the training set. [default: 0; with no epoch "
    "limit at least 100, so validating a small set does not eat the time budget]",
)
@click.option(
    "--kind",
    default="segmentation",
    show_default=True,
    type=click.Choice(["segmentation", "anomaly"]),
    help=KIND_HELP,
)
@click.option("--features", default=None, help=FEATURES_HELP)
@click.option("--target-frr", type=click.FloatRange(0, 0.5), default=None, help=FRR_HELP)
@click.option("--refine-defects", type=click.IntRange(min=1), default=None, help=REFINE_HELP)
def train(
    out,
    stem_stride,
    init_from,
    augment_json,
    kind,
    features,
    target_frr,
    refine_defects,
    **settings,
):
    """Train a U-Net on a dataset folder; writes checkpoints, model.onnx and model.json.

    \b
    From scratch:  inspect train --data DATASET --out runs/mine
    Fine-tune:     inspect train --data DATASET --out runs/mine --init-from industrial:steel
    Good-only:     inspect train --data DATASET --out runs/mine --kind anomaly
    """
    refuse_misplaced(kind, features, target_frr, refine_defects)
    if kind == "anomaly":
        given = dict(settings, stem_stride=stem_stride, init_from=init_from, augment=augment_json)
        given["refine_defects"] = refine_defects
        return run_anomaly(out, features, target_frr, given)
    try:
        from inspect_core.training.config import AugmentConfig, TrainConfig
        from inspect_core.training.trainer import train as run_train
    except ImportError as e:
        raise InspectError(
            f"training needs the 'train' extra ({e}); run: pip install -e '.[train]'"
        ) from e
    aug = AugmentConfig(**augment_overrides(augment_json, AugmentConfig))
    # every other option is the TrainConfig field of its name; None = chosen by the run
    cfg = TrainConfig(
        out=out,
        stem_stride=int(stem_stride) if stem_stride else None,
        init_from=init_from,
        augment=aug,
        **settings,
    )
    from inspect_core.commands.progress import train_progress

    with train_progress() as (log, progress):
        card = run_train(cfg, log=log, progress=progress)
    v, seen = card["validation"], card.get("validation_seen_groups")
    where = card.get("validation_split") or {}
    what = f"unseen groups {','.join(where['groups'])}" if where.get("unseen") else "val"
    click.echo(
        f"wrote {Path(out) / 'model.onnx'}: {what} mIoU {v['miou']:.4f}, "
        f"mean Dice {v['mean_dice']:.4f}"
        + (f"; seen groups' val mIoU {seen['miou']:.4f}" if seen else "")
    )


def augment_overrides(text: str | None, config: type) -> dict:
    """``--augment`` JSON as keyword arguments of the dataclass ``config`` (without ``crop``,
    which ``--size`` sets); InspectError unless it is an object of known settings, each a
    finite number (true/false for switches)."""
    if not text:
        return {}
    try:
        d = json.loads(text)
    except ValueError as e:
        raise InspectError(
            f"--augment {text!r}: not JSON ({e}); give an object like "
            '\'{"rotate": 30, "rotate90": true}\''
        ) from None
    fields = {k: f.default for k, f in config.__dataclass_fields__.items() if k != "crop"}
    if not isinstance(d, dict):
        raise InspectError(
            f"--augment {text!r}: not a JSON object; give one like "
            '\'{"rotate": 30, "rotate90": true}\''
        )
    for k, v in d.items():
        if k not in fields:
            raise InspectError(
                f"--augment: unknown setting {k!r} (crop comes from --size); "
                f"the settings are {', '.join(fields)}"
            )
        switch = isinstance(fields[k], bool)
        ok = (
            isinstance(v, bool)
            if switch
            else isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        )
        if not ok:
            raise InspectError(
                f"--augment: {k} = {json.dumps(v)}: give "
                f"{'true or false' if switch else 'a finite number'}"
            )
    return d
