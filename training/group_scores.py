"""Score a shipped model on each group of the images its card validated on, and record it.

    python training/group_scores.py plugins/inspect_plugins/aerial/models/landcover.onnx \\
        --data ../shared/datasets/dubai-aerial --groups '^(tile\\d+)_'
    python training/group_scores.py plugins/inspect_plugins/industrial/models/steel.onnx \\
        --data ../shared/datasets/neu-steel --note "NEU-Seg's file names name no group"

Writes ``validation_by_group`` (each group's mIoU and image count, and their spread: lowest,
highest, standard deviation, worst group) into the card, with ``--note`` the card's
``groups_note`` (why it has no score on unseen groups, shown beside its headline scores), and
with ``--unseen-from RUN/model.json`` the unseen-group score of the settings run (the same
settings trained with whole groups held out) as this model's estimate, saying so. The
model file is not changed. The test split is never looked at.
"""

from __future__ import annotations

import json
from pathlib import Path

from _cli import parser, run

from inspect_core.commands.evaluate import evaluate_model
from inspect_core.data.groups import with_groups
from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.training.holdout import held_out_dataset
from inspect_core.training.model_card import save_card


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("model", type=Path, help="model .onnx with its card (.json) beside it")
    ap.add_argument("--data", required=True, help="the dataset folder it was trained on")
    ap.add_argument("--groups", default=None, help="groups pattern [default: the card's]")
    ap.add_argument("--note", default=None, help="why the card has no unseen-group score")
    ap.add_argument(
        "--unseen-from",
        type=Path,
        default=None,
        help="the card (model.json) of the settings run: the same settings trained with whole "
        "groups held out (--val-groups); its unseen-group score becomes this model's estimate",
    )
    args = ap.parse_args()
    card_path = args.model.with_suffix(".json")
    card = json.loads(card_path.read_text())
    pattern = args.groups or (card.get("training") or {}).get("groups")
    if pattern:
        ds = with_groups(held_out_dataset(card, args.data), pattern)
        s = evaluate_model(OnnxModel(args.model, variant="fp32"), ds, "val", by_group=True)
        card["validation_by_group"] = {
            "pattern": pattern,
            "groups": {
                g: {"miou": round(v["miou"], 4), "images": v["images"]}
                for g, v in s["by_group"].items()
            },
            "spread": s["group_spread"],
        }
        sp = s["group_spread"]
        print(
            f"{sp['groups']} groups: mIoU {sp['min_miou']:.4f} to {sp['max_miou']:.4f} "
            f"(std {sp['std_miou']:.4f}), worst {sp['worst_group']}"
        )
    if args.note:
        card["groups_note"] = args.note
    if args.unseen_from is not None:
        card["unseen_groups_estimate"] = estimate_from(args.unseen_from, card)
    save_card(card, card_path, args.model)


def estimate_from(settings_card: Path, shipped: dict) -> dict:
    """The unseen-group score of a settings run, as an estimate for the ``shipped`` model (its
    card) trained with the same settings on every group: the settings run's score with the
    test-time copies and prior correction the shipped model has (its headline, the score
    without copies or before the correction); InspectError when the settings run is of another
    dataset or has no score in the shipped model's form."""
    from inspect_core.errors import InspectError

    run = json.loads(settings_card.read_text())
    split = run.get("validation_split") or {}
    if not split.get("unseen"):
        raise InspectError(
            f"{settings_card}: no unseen-group score in it; train the settings run with "
            "--val-groups"
        )
    theirs, ours = (
        (run.get("dataset") or {}).get("name"),
        (shipped.get("dataset") or {}).get("name"),
    )
    if theirs != ours:
        raise InspectError(f"{settings_card}: a run on {theirs}, this model is of {ours}")
    scores, form = _in_form(run, tuple(shipped.get("tta") or ()), _prior(shipped))
    if scores is None:
        raise InspectError(
            f"{settings_card}: no score of the settings run in the shipped model's form "
            f"({form}); rerun its choose_tta.py / fit_prior.py to match"
        )
    groups = list(split.get("groups") or [])
    return {
        "miou": round(float(scores["miou"]), 4),
        "mean_dice": round(float(scores["mean_dice"]), 4),
        "images": scores.get("images"),
        "what": f"estimate: the same settings trained without {', '.join(groups)} and scored "
        f"on them ({settings_card.parent.name}, {form}); this model trained on them too",
        "groups": groups,
    }


def _prior(card: dict) -> bool:
    return bool((card.get("calibration") or {}).get("applied"))


def _in_form(run: dict, tta: tuple, prior: bool) -> tuple[dict | None, str]:
    """The settings run's held-out scores with test-time copies ``tta`` and the prior
    correction on or off, and those words; None where it has no such score."""
    form = (
        f"test-time copies {','.join(tta) if tta else 'none'}, "
        f"prior correction {'on' if prior else 'off'}"
    )
    run_tta, run_prior = tuple(run.get("tta") or ()), _prior(run)
    if run_tta == tta and run_prior == prior:
        return run["validation"], form
    if run_tta == tta and run_prior and not prior:
        return run.get("validation_uncalibrated"), form
    if not tta and not prior and "validation_no_tta" in run:  # before copies and correction
        return run["validation_no_tta"], form
    return None, form


if __name__ == "__main__":
    run(main)
