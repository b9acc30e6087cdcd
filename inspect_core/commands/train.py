"""``inspect train``: fit a U-Net on a dataset folder (needs the ``train`` extra: torch)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from inspect_core.errors import InspectError


@click.command()
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Dataset folder (classes.json + train/ val/ images and masks, or MVTec AD).",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder to write.")
@click.option("--epochs", default=40, show_default=True)
@click.option("--batch", default=8, show_default=True)
@click.option("--size", default=256, show_default=True, help="Training crop size in pixels.")
@click.option("--width", default=16, show_default=True, help="Channels at the first level.")
@click.option("--depth", default=4, show_default=True, help="Down-sampling steps.")
@click.option(
    "--stem-stride",
    default=1,
    type=click.Choice(["1", "2"]),
    show_default=True,
    help="2 runs the U-Net at half resolution (faster; for defects wider than a few px).",
)
@click.option(
    "--arch", default="enhanced", type=click.Choice(["enhanced", "plain"]), show_default=True
)
@click.option("--lr", default=2e-3, show_default=True)
@click.option("--patience", default=8, show_default=True, help="Early stopping patience (epochs).")
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--max-minutes", default=0.0, show_default=True, help="Stop after this long (0 = no limit)."
)
@click.option(
    "--init-from",
    default=None,
    help="Start from weights: a .pt/.onnx path or PLUGIN:RECIPE of an installed plugin.",
)
@click.option(
    "--augment",
    "augment_json",
    default=None,
    help='Augmentation overrides as JSON, e.g. \'{"rotate": 30, "rotate90": true}\'.',
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
    default=0,
    show_default=True,
    help="Batches per epoch (0 = one pass over the training set).",
)
def train(out, size, stem_stride, init_from, augment_json, **settings):
    """Train a U-Net on a dataset folder; writes checkpoints, model.onnx and model.json."""
    try:
        from inspect_core.training.augment import AugmentConfig
        from inspect_core.training.trainer import TrainConfig
        from inspect_core.training.trainer import train as run_train
    except ImportError as e:
        raise InspectError(
            f"training needs the 'train' extra ({e}); run: pip install -e '.[train]'"
        ) from e
    aug = AugmentConfig(crop=size, **augment_overrides(augment_json, AugmentConfig))
    if init_from and ":" in init_from and not Path(init_from).exists():
        from inspect_core.plugin_api.resolve import resolve_model

        init_from = str(resolve_model(init_from))
    # every other option is the TrainConfig field of its name
    cfg = TrainConfig(
        out=out,
        size=size,
        stem_stride=int(stem_stride),
        init_from=init_from,
        augment=aug,
        **settings,
    )
    from inspect_core.commands.progress import train_progress

    with train_progress() as (log, progress):
        card = run_train(cfg, log=log, progress=progress)
    v = card["validation"]
    click.echo(
        f"wrote {Path(out) / 'model.onnx'}: val mIoU {v['miou']:.4f}, "
        f"mean Dice {v['mean_dice']:.4f}"
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
