"""``inspect train --kind anomaly``: a good-only model (:mod:`inspect_core.anomaly`), from the
options of ``inspect train`` that apply to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from inspect_core.errors import InspectError

# the options of inspect train a good-only model uses; any other given is refused
USED = ("data", "groups", "val_groups", "seed", "threads", "refine_defects")
# and those --features synthetic uses too (it trains a network)
NETWORK = {
    "max_minutes": "minutes",
    "width": "net_width",
    "size": "crop",
    "steps_per_epoch": "steps",
}
KIND_HELP = (
    "segmentation: a U-Net from painted masks; anomaly: a good-only model from the good "
    "images alone (MVTec AD train/good, or the train images whose masks are all background); "
    "its regions are class 'anomaly'."
)
FEATURES_HELP = (
    "With --kind anomaly: synthetic (a U-Net trained from scratch on the good images with "
    "synthetic defects; --max-minutes, --width, --size and --steps-per-epoch (the schedule "
    "over that many steps instead of the clock) apply), or what a memory bank "
    "stores: filters (fixed Gaussian-derivative filters), random (the U-Net encoder, random "
    "weights) or encoder:PATH.pt (a U-Net checkpoint of another product, its card beside "
    "it). [default: synthetic]"
)
FRR_HELP = (
    "With --kind anomaly: the share of good images the threshold may reject, fitted on held-out "
    "good images. [default: 0.01]"
)


REFINE_HELP = (
    "With --kind anomaly: refine the threshold with up to N labelled defect images (those of "
    "the fit group, or drawn from the check images): it is lowered where that catches more of "
    "them at a better F1, to at most 5x the target false-reject rate. [default: good images "
    "alone]"
)


def refuse_misplaced(
    kind: str, features: str | None, target_frr: float | None, refine: int | None = None
) -> None:
    if kind != "anomaly" and (features, target_frr, refine) != (None, None, None):
        raise InspectError(
            "--features, --target-frr and --refine-defects are for a good-only model: add "
            "--kind anomaly"
        )


def run_anomaly(
    out: str, features: str | None, target_frr: float | None, settings: dict[str, Any]
) -> None:
    """Train a good-only model into ``out`` and say what it scored."""
    try:
        from inspect_core.anomaly.config import DEFAULT_FEATURES, AnomalyConfig
        from inspect_core.training.anomaly.fit import train_anomaly
    except ImportError as e:
        raise InspectError(
            f"training needs the 'train' extra ({e}); run: pip install -e '.[train]'"
        ) from e
    features = features or DEFAULT_FEATURES
    used = USED + (tuple(NETWORK) if features == "synthetic" else ())
    given = [
        k
        for k, v in settings.items()
        if k not in used and v not in (None, False) and v != _DEFAULTS.get(k)
    ]
    if given:
        names = ", ".join("--" + k.replace("_", "-") for k in given)
        raise InspectError(
            f"{names}: not used by --kind anomaly --features {features}; leave them out"
        )
    network = {NETWORK[k]: settings[k] for k in NETWORK if settings.get(k)}  # 0: not given
    try:
        cfg = AnomalyConfig(
            data=Path(settings["data"]),
            out=Path(out),
            features=features,
            target_frr=0.01 if target_frr is None else target_frr,
            seed=settings.get("seed") or 0,
            groups=settings.get("groups"),
            val_groups=settings.get("val_groups"),
            threads=settings.get("threads") or 0,
            refine_defects=settings.get("refine_defects") or 0,
            **network,
        )
    except ValueError as e:
        raise InspectError(f"--kind anomaly: {e}") from None
    card = train_anomaly(cfg, log=lambda line: click.echo(line, err=True))
    s, frr = card["scores"]["check"], card["check"]["false_reject_rate"]
    shown = {k: s[k] for k in ("image_auroc", "pixel_auroc", "aupro", "f1_max")}
    click.echo(
        f"wrote {Path(out) / 'model.onnx'}: threshold {card['threshold']['value']:.4g} "
        f"(false-reject rate {frr if frr is None else round(frr, 4)} on "
        f"{card['check']['good_images']} good check images); "
        + ", ".join(f"{k} {'n/a' if v is None else round(v, 4)}" for k, v in shown.items())
    )


# inspect train's defaults for options that a good-only run leaves out but click always fills
_DEFAULTS: dict[str, Any] = {
    "batch": 8,
    "loss": "dice_ce",
    "workers": 1,
    "val_max_side": 0,
    "val_every": 1,
}
