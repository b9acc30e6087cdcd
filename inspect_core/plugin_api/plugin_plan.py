"""What ``inspect plugin new --data`` derives from a :class:`DatasetSurvey`: the sizes of the
recipe's post-processing and rules (:func:`plan_chain`), and the shipped model to fine-tune
(:func:`choose_start_model`) with the ``inspect train`` command that does it.

The recipe is written for any model's classes (no class names in it), so the plugin loads with
the copy of the starting model it ships until the trained model replaces that copy.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from inspect_core.errors import InspectError
from inspect_core.plugin_api.dataset_survey import LOW_PERCENTILE, DatasetSurvey
from inspect_core.plugin_api.resolve import resolve_model

OPEN_SIZE = 3
# an opening of size k keeps regions that measure at least k + 1 px thick (k px wide; see
# dataset_survey); predicted masks run thinner than true ones, so `open` only at twice that
OPEN_MIN_THICKNESS = 2 * (OPEN_SIZE + 1)

# the shipped models to start from, by channels: same channels, trained on surface defects
PREFERRED = {
    1: ("industrial:steel", "gray, trained on surface defects of steel strip (NEU-Seg)"),
    3: (
        "industrial:ballscrew",
        "colour, trained on surface defects (pitting on ball screws); the other shipped colour "
        "models (aerial:landcover, robotics:driving) segment whole scenes, not defects",
    ),
}


@dataclass(frozen=True)
class ChainPlan:
    """Post-processing and rule sizes for a new recipe, with the reason for each."""

    open_size: int  # 0 = no opening
    remove_small_px: int
    min_area_px: int
    reasons: list[str] = field(default_factory=list)


def plan_chain(survey: DatasetSurvey) -> ChainPlan:
    """Sizes from the smallest true defects: no ``open`` unless every class is thick enough
    to survive it twice over; ``remove_small`` at half the small end of the true regions'
    areas; the ``min_area`` FAIL rule at that small end (95% of true regions reach it)."""
    found = survey.defects
    if not found:
        raise InspectError(
            f"{survey.root}: no defect pixels in the {survey.split} masks (every mask is class "
            "0); label the defects (class indices per pixel) before making a plugin from it"
        )
    thinnest = min(found, key=lambda c: c.thickness_low)
    smallest = min(found, key=lambda c: c.area_low)
    low = f"{LOW_PERCENTILE:g}th percentile"
    if thinnest.thickness_low >= OPEN_MIN_THICKNESS:
        open_size = OPEN_SIZE
        why_open = (
            f"open size {OPEN_SIZE}: every class is at least {thinnest.thickness_low:g} px "
            f"thick ({low}; {thinnest.name} the thinnest)"
        )
    else:
        open_size = 0
        why_open = (
            f"no open: {thinnest.name} regions are {thinnest.thickness_low:g} px thick ({low}); "
            f"an opening of size {OPEN_SIZE} erases regions narrower than {OPEN_SIZE} px"
        )
    remove = max(1, math.floor(smallest.area_low / 2))
    min_area = max(remove + 1, math.floor(smallest.area_low))
    return ChainPlan(
        open_size,
        remove,
        min_area,
        [
            why_open,
            f"remove_small default_px {remove}: half the {low} of true region areas "
            f"({smallest.area_low:.0f} px, {smallest.name})",
            f"min_area min {min_area}: 95% of true regions of every class are at least this "
            "large, so they FAIL",
        ],
    )


@dataclass(frozen=True)
class StartModel:
    """A model to fine-tune from: ``spec`` for ``--init-from`` (PLUGIN:RECIPE or a path),
    its file, its channels and stem stride (from its card) and why it was chosen."""

    spec: str
    model: Path
    channels: int
    stem_stride: int
    reason: str

    def train_command(self, data: Path, out: str) -> str:
        """The ``inspect train`` command that fine-tunes this model on ``data``: the run trains
        the network of the weights it starts from (their width, depth and stem stride), also
        for thin defects. Measured on 4 px cracks (magnetic-tile, 51 images, 30 minutes on 2
        cores): steel's half-resolution network reached a higher val Dice than the same
        weights run at full resolution (``--stem-stride 1``), which trains 5x slower."""
        q = shlex.quote
        return f"inspect train --data {q(str(data))} --out {q(out)} --init-from {q(self.spec)}"


def choose_start_model(channels: int, model: Path | None = None) -> StartModel:
    """``model`` when given; otherwise the shipped model for ``channels`` (:data:`PREFERRED`),
    or, when that is not installed, another installed one with a card. A model whose channels
    differ still works: training adapts its first layer to the images' channels."""
    if model is not None:
        return _from_file(str(model), model, "given with --model")

    spec, why = PREFERRED.get(channels, PREFERRED[3])
    try:
        return _from_file(spec, resolve_model(spec), why)
    except InspectError as e:
        missing = e
    for other_channels, (other, _) in PREFERRED.items():
        if other_channels != channels:
            try:
                path = resolve_model(other)
            except InspectError:
                continue
            why = f"{spec} is not installed; training adapts its first layer to your images"
            return _from_file(other, path, why)
    raise InspectError(
        f"no shipped model to start from ({missing}); pass --model MODEL.onnx (a model with a "
        "card, model.json, beside it)"
    )


def _from_file(spec: str, path: Path, reason: str) -> StartModel:
    card_path = path.with_suffix(".json")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError):
        card = {}
    arch = card.get("architecture") or {}
    return StartModel(
        spec,
        path,
        int(card.get("channels") or arch.get("in_channels") or 1),
        int(arch.get("stem_stride", 1)),
        reason,
    )
