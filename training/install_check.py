"""Refuse to install a model that scores lower than the one it would replace.

    python training/install_check.py runs/steel/model.json \
        plugins/inspect_plugins/industrial/models/steel.json

training/train.sh runs this before it copies a run into its plugin: the fine-tuning stages
(steel-ft*.args, tile-ft*.args) start from the installed weights, and a warm restart can end
below where it began. The two cards' validation scores (with each model's test-time copies
and prior correction, as shipped) are compared only when both were measured on the same
images (the validation_split lists of the cards; an installed card from before those lists is
taken to be of its dataset's val split, when the new run validated there on as many images);
a lower mIoU, or images that differ or that a card does not list, refuse the install (exit 1)
with what was found. ``--force`` (FORCE=1
for train.sh) installs anyway: a recipe that changed its validation images on purpose. No
installed card: nothing to compare, the install goes ahead.
"""

from __future__ import annotations

import json
from pathlib import Path

from _cli import parser, run


def verdict(new: dict, old: dict) -> tuple[bool, str]:
    """(install?, why) for the card ``new`` replacing the card ``old``."""
    a, b = new.get("validation_split") or {}, old.get("validation_split") or {}
    images_a, images_b = a.get("images"), b.get("images")
    if images_a and not b and _same_val_split(new, old):
        images_b = images_a  # a card from before validation_split: the dataset's val split
    if not images_a or not images_b:
        return False, "a card does not list its validation images: the scores cannot be compared"
    if sorted(images_a) != sorted(images_b):
        return False, (
            f"validated on other images ({len(images_a)} against {len(images_b)}, "
            f"{len(set(images_a) ^ set(images_b))} not in both): the scores cannot be compared"
        )
    new_miou, old_miou = new["validation"]["miou"], old["validation"]["miou"]
    scores = f"val mIoU {new_miou:.4f} against the installed {old_miou:.4f}"
    if new_miou < old_miou:
        return False, f"lower: {scores} on the same {len(images_a)} images"
    return True, f"{scores} on the same {len(images_a)} images"


def _same_val_split(new: dict, old: dict) -> bool:
    """Whether ``old``, a card written before cards listed their validation images (every
    model then validated on its dataset's val split), was scored on ``new``'s images: ``new``
    validated on the val split of the same dataset, as many images."""
    name, count = (new.get("dataset") or {}).get("name"), new["validation"].get("images")
    return (
        (new.get("validation_split") or {}).get("source") == "val split"
        and bool(name)
        and name == (old.get("dataset") or {}).get("name")
        and count is not None
        and count == old["validation"].get("images")
    )


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("new", type=Path, help="the run's card (runs/NAME/model.json)")
    ap.add_argument("installed", type=Path, help="the installed card it would replace")
    ap.add_argument("--force", action="store_true", help="install even when not better")
    args = ap.parse_args()
    new = json.loads(args.new.read_text())
    if not args.installed.is_file():
        print(f"install: {args.installed} does not exist yet")
        return
    ok, why = verdict(new, json.loads(args.installed.read_text()))
    if ok:
        print(f"install: {why}")
    elif args.force:
        print(f"install (forced): {why}")
    else:
        raise SystemExit(
            f"error: not installed over {args.installed}: {why}. The run stays in "
            f"{args.new.parent}; FORCE=1 (--force) installs it anyway"
        )


if __name__ == "__main__":
    run(main)
