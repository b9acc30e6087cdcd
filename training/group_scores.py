"""Score a shipped model on each group of the images its card validated on, and record it.

    python training/group_scores.py plugins/aerial/models/landcover.onnx \\
        --data ../shared/datasets/dubai-aerial --groups '^(tile\\d+)_'
    python training/group_scores.py plugins/industrial/models/steel.onnx \\
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
        card["unseen_groups_estimate"] = estimate_from(args.unseen_from)
    save_card(card, card_path, args.model)


def estimate_from(settings_card: Path) -> dict:
    """The unseen-group score of a settings run, as an estimate for a model trained with the
    same settings on every group."""
    run = json.loads(settings_card.read_text())
    unseen = (run.get("scores") or {}).get("unseen_groups")
    if not unseen:
        from inspect_core.errors import InspectError

        raise InspectError(
            f"{settings_card}: no unseen-group score in it; train the settings run with "
            "--val-groups"
        )
    return {
        **unseen,
        "what": f"estimate: the same settings trained without {', '.join(unseen['groups'])} "
        f"and scored on them ({settings_card.parent.name}); this model trained on them too",
    }


if __name__ == "__main__":
    run(main)
