"""Leave-one-group-out folds: how much a recipe's score moves from one unseen group to another.

    python training/logo_folds.py --data ../shared/datasets/camvid --out runs/driving-logo \\
        -- --size 384 --width 32 --stem-stride 2 --max-minutes 20 --threads 1

One ``inspect train --val-groups G --out OUT/G ARGS`` per group G of the dataset (classes.json's
``"groups"`` or ``--groups``): G's images, train and val, are never trained on and give the
fold's score. A fold whose ``model.json`` exists is kept, so a rerun resumes where it stopped
(``--only A,B`` runs some). ``OUT/folds.json`` gets each fold's mIoU, mean Dice and per-class
IoU on its group, and the mean, standard deviation and worst fold; the table is printed.

What the spread says: one held-out group (as a recipe's .args does) is one draw; the folds show
whether the next lot, tile or sequence is likely to land near it. Each fold's checkpoint is
picked on the group it is scored on (as ``--val-groups`` does), which flatters every fold a
little, and each trains on one group fewer than the shipped model.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from _cli import parser, run

from inspect_core.data.datasets import open_dataset
from inspect_core.data.groups import group_names, members, with_groups
from inspect_core.errors import DataError, InspectError


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--data", required=True, help="dataset folder with groups")
    ap.add_argument("--out", required=True, type=Path, help="folder of the folds (OUT/GROUP)")
    ap.add_argument("--groups", default=None, help="groups pattern (default: classes.json's)")
    ap.add_argument("--only", default=None, help="run only these groups (comma-separated)")
    ap.add_argument("train_args", nargs="*", help="after --: the inspect train options")
    args = ap.parse_args()
    groups = dataset_groups(args.data, args.groups)
    if args.only:
        wanted = [g for g in args.only.split(",") if g]
        if unknown := sorted(set(wanted) - set(groups)):
            raise DataError(f"--only: no such group {unknown}; the groups are {groups}")
        groups = [g for g in groups if g in wanted]
    for g in groups:
        run_fold(args.data, args.out / g, g, args.groups, args.train_args)
    summary = summarize(args.out, dataset_groups(args.data, args.groups))
    (args.out / "folds.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(table(summary))


def dataset_groups(data: str, pattern: str | None) -> list[str]:
    """The groups of train and val together (what ``--val-groups`` chooses from)."""
    names: list[str] = []
    for split in ("train", "val"):
        if (Path(data) / split).is_dir():
            names += group_names(with_groups(open_dataset(data, split), pattern))
    groups = list(members(names))
    if len(groups) < 2:
        raise DataError(f"{data}: {len(groups)} group(s) ({groups}); folds need two or more")
    return groups


def run_fold(data: str, out: Path, group: str, pattern: str | None, extra: list[str]) -> None:
    """``inspect train`` with ``group`` held out into ``out``, unless it has finished there
    with the same arguments (``fold_args.json``); InspectError when ``out`` holds a fold of
    other arguments: folds of mixed settings would make one table."""
    import click

    from inspect_core.commands.train import train

    args = ["--data", data, "--out", str(out), "--val-groups", group, *extra]
    if pattern:
        args += ["--groups", pattern]
    recorded = out / "fold_args.json"
    before = json.loads(recorded.read_text()) if recorded.is_file() else None
    if before is not None and before != args:
        raise InspectError(
            f"{out}: this fold was trained with other arguments ({' '.join(before)}); give "
            "another --out, or delete the folder to train it again"
        )
    if (out / "model.json").is_file() and before is not None:
        print(f"{group}: done before ({out / 'model.json'})")
        return
    if (out / "model.json").is_file():
        raise InspectError(
            f"{out}: a finished run of unknown arguments (no fold_args.json); give another "
            "--out, or delete the folder to train this fold"
        )
    out.mkdir(parents=True, exist_ok=True)
    recorded.write_text(json.dumps(args))
    print(f"{group}: inspect train {' '.join(args)}", flush=True)
    try:
        train.main(args=args, standalone_mode=False)
    except click.ClickException as e:
        raise InspectError(f"fold {group}: inspect train: {e.format_message()}") from None


def summarize(out: Path, groups: list[str]) -> dict:
    """Each finished fold's score on its own group, and their spread."""
    folds = {}
    for g in groups:
        card_path = out / g / "model.json"
        if not card_path.is_file():
            continue
        card = json.loads(card_path.read_text())
        v = card["validation"]
        folds[g] = {
            "miou": round(v["miou"], 4),
            "mean_dice": round(v["mean_dice"], 4),
            "iou": {c: round(s["iou"], 4) for c, s in v["per_class"].items()},
            "images": v.get("images"),
            "best_epoch": card.get("best_epoch"),
            "epochs": card.get("epochs"),
        }
    scores = [f["miou"] for f in folds.values()]
    spread = None
    if scores:
        worst = min(folds, key=lambda g: folds[g]["miou"])
        spread = {
            "mean": round(statistics.fmean(scores), 4),
            "std": round(statistics.pstdev(scores), 4),
            "min": min(scores),
            "max": max(scores),
            "worst_group": worst,
        }
    missing = [g for g in groups if g not in folds]
    return {"folds": folds, "spread": spread, "missing": missing}


def table(summary: dict) -> str:
    rows = [f"{'group':<16} {'mIoU':>7} {'Dice':>7}  epochs (best)"]
    for g, f in summary["folds"].items():
        rows.append(
            f"{g:<16} {f['miou']:>7.4f} {f['mean_dice']:>7.4f}  {f['epochs']} ({f['best_epoch']})"
        )
    if s := summary["spread"]:
        rows.append(
            f"mean {s['mean']:.4f}, std {s['std']:.4f}, worst {s['worst_group']} ({s['min']:.4f})"
        )
    if summary["missing"]:
        rows.append(f"not run yet: {', '.join(summary['missing'])}")
    return "\n".join(rows)


if __name__ == "__main__":
    run(main)
