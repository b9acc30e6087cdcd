"""``inspect train --kind anomaly``: a good-only model (:mod:`inspect_core.anomaly`), from the
options of ``inspect train`` that apply to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from inspect_core.errors import InspectError

# the options of inspect train a good-only model uses; any other given is refused
USED = ("data", "groups", "val_groups", "seed", "threads")
KIND_HELP = (
    "segmentation: a U-Net from painted masks; anomaly: a good-only model from the good "
    "images alone (MVTec AD train/good, or the train images whose masks are all background); "
    "its regions are class 'anomaly'."
)
FEATURES_HELP = (
    "With --kind anomaly: the features the memory bank stores: filters (fixed "
    "Gaussian-derivative filters), random (the U-Net encoder, random weights) or "
    "encoder:PATH.pt (a U-Net checkpoint of another product, its card beside it). "
    "[default: filters]"
)
FRR_HELP = (
    "With --kind anomaly: the share of good images the threshold may reject, fitted on held-out "
    "good images. [default: 0.01]"
)


def refuse_misplaced(kind: str, features: str | None, target_frr: float | None) -> None:
    if kind != "anomaly" and (features is not None or target_frr is not None):
        raise InspectError(
            "--features and --target-frr are for a good-only model: add --kind anomaly"
        )


def run_anomaly(
    out: str, features: str | None, target_frr: float | None, settings: dict[str, Any]
) -> None:
    """Train a good-only model into ``out`` and say what it scored."""
    given = [
        k
        for k, v in settings.items()
        if k not in USED and v not in (None, False) and v != _DEFAULTS.get(k)
    ]
    if given:
        names = ", ".join("--" + k.replace("_", "-") for k in given)
        raise InspectError(
            f"{names}: not used by --kind anomaly (it fits no network); leave them out"
        )
    try:
        from inspect_core.anomaly.config import DEFAULT_FEATURES, AnomalyConfig
        from inspect_core.training.anomaly.fit import train_anomaly
    except ImportError as e:
        raise InspectError(
            f"training needs the 'train' extra ({e}); run: pip install -e '.[train]'"
        ) from e
    try:
        cfg = AnomalyConfig(
            data=Path(settings["data"]),
            out=Path(out),
            features=features or DEFAULT_FEATURES,
            target_frr=0.01 if target_frr is None else target_frr,
            seed=settings.get("seed") or 0,
            groups=settings.get("groups"),
            val_groups=settings.get("val_groups"),
            threads=settings.get("threads") or 0,
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
