"""The images a run validates on, and so picks its best checkpoint by: the dataset's ``val``
split, or, where it has none, a part of ``train`` held out (never ``test``: a model selected
on its test images has no honest test score left).

The held-out part is chosen by group where ``classes.json`` names groups (``"groups"``: a regex
whose one capture group, applied to each file stem, names the part, tile or video an image
comes from; near-identical images of one group on both sides would make validation flatter
than the line), else as a seeded random sample. Either way about 15% of the training images,
at least one, never more than a third. The choice is logged and recorded in the model card.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass

from inspect_core.data.datasets import Dataset, has_split, open_dataset
from inspect_core.errors import DataError

SHARE = 0.15  # of the training images held out for validation
MAX_SHARE = 1 / 3


@dataclass(frozen=True)
class Holdout:
    """Where the validation images came from (the card's ``validation_split``)."""

    source: str  # "val split" or "carved from train"
    rule: str  # how they were chosen, in one line
    count: int
    images: list[str]  # paths relative to the dataset folder
    groups: list[str]  # the held-out groups (empty without a groups pattern)

    def to_dict(self) -> dict:
        return asdict(self)


def open_splits(
    root: str, seed: int, log: Callable[[str], None]
) -> tuple[Dataset, Dataset, Holdout]:
    """The training and validation datasets of ``root`` and how the validation set was chosen:
    its ``val`` split, or a part of ``train`` carved out (:func:`carve_validation`)."""
    train = open_dataset(root, "train")
    if has_split(root, "val"):
        val = open_dataset(root, "val")
        images = [str(s.image.relative_to(val.root)) for s in val.samples]
        return train, val, Holdout("val split", "the dataset's val split", len(val), images, [])
    train, val, holdout = carve_validation(train, seed)
    names = [s.image.name for s in val.samples]
    listed = ", ".join(names[:8]) + (
        f", ... ({len(names)} in model.json)" if len(names) > 8 else ""
    )
    log(
        f"{root} has no val split: validating on {holdout.count} of "
        f"{holdout.count + len(train)} training images, held out ({holdout.rule}); they are "
        "not trained on. The test split, if any, is never used to pick the model."
    )
    log(f"  held out: {listed}")
    if all(s.mask is None for s in val.samples):
        log(
            "warning: the held-out images are all defect-free (MVTec train/good): validation "
            "then measures false alarms only. Add a val/ split with defects to pick models on."
        )
    return train, val, holdout


def carve_validation(train: Dataset, seed: int) -> tuple[Dataset, Dataset, Holdout]:
    """Split ``train`` into (rest, held out, how): by ``train.groups`` when set, else at
    random; the same seed and files always give the same split."""
    n = len(train)
    cap = int(n * MAX_SHARE)
    if cap < 1:
        raise DataError(
            f"{train.root}: {n} training image(s) and no val split: a validation set needs at "
            "least 3 training images to hold one out; add a val/ split (val/images, val/masks)"
        )
    target = min(cap, max(1, round(n * SHARE)))
    if train.groups:
        held, groups, rule = _by_group(train, target, cap, seed)
    else:
        held = sorted(random.Random(seed).sample(range(n), target))
        groups, rule = [], f"a random {SHARE:.0%} of train, seed {seed}"
    taken = set(held)
    rest = [i for i in range(n) if i not in taken]
    val = train.subset(held, "val")
    images = [str(s.image.relative_to(train.root)) for s in val.samples]
    return (
        train.subset(rest, "train"),
        val,
        Holdout("carved from train", rule, len(held), images, groups),
    )


def group_names(train: Dataset) -> list[str]:
    """The group of every training image: the capture group of ``train.groups`` in its stem;
    DataError naming the images it does not match."""
    pattern = re.compile(train.groups or "")
    names, missed = [], []
    for s in train.samples:
        m = pattern.search(s.image.stem)
        if m is None or m.group(1) is None:
            missed.append(s.image.name)
        else:
            names.append(m.group(1))
    if missed:
        raise DataError(
            f"{train.root / 'classes.json'}: the groups pattern {train.groups!r} does not match "
            f"{len(missed)} training image(s) ({', '.join(missed[:3])}"
            f"{', ...' if len(missed) > 3 else ''}); widen it so every file stem names its group"
        )
    return names


def _by_group(train: Dataset, target: int, cap: int, seed: int) -> tuple[list[int], list[str], str]:
    """Whole groups, in a seeded random order, until ``target`` images (at most ``cap``)."""
    names = group_names(train)
    members: dict[str, list[int]] = {}
    for i, g in enumerate(names):
        members.setdefault(g, []).append(i)
    order = sorted(members)
    random.Random(seed).shuffle(order)
    held: list[str] = []
    total = 0
    for g in order:
        if total >= target:
            break
        if total + len(members[g]) <= cap:
            held.append(g)
            total += len(members[g])
    if not held or len(held) == len(members):
        sizes = ", ".join(f"{g}: {len(members[g])}" for g in sorted(members)[:6])
        raise DataError(
            f"{train.root / 'classes.json'}: the groups pattern {train.groups!r} gives "
            f"{len(members)} group(s) ({sizes}{', ...' if len(members) > 6 else ''}) and no "
            f"set of whole groups is at most a third of the {len(names)} training images; add "
            "a val/ split, or a pattern with smaller groups"
        )
    rule = (
        f"whole groups by {train.groups!r}: {len(held)} of {len(members)} groups "
        f"({', '.join(sorted(held))}), seed {seed}"
    )
    return sorted(i for g in held for i in members[g]), sorted(held), rule
