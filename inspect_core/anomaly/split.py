"""Which images build a good-only model's memory bank, which fit its threshold, and which
check it (no torch).

Only good training images are ever fitted on: the MVTec AD layout's ``train/good``, or, in the
shared layout, the train images whose masks are all background. They are split three ways:
``bank`` (their patches make the memory bank), ``fit`` (the threshold is fitted on their
scores) and ``check`` (the false-reject rate is measured on them, no fitting saw them). With
groups (classes.json's ``"groups"`` or ``--groups``) the split is by whole groups: ``check`` is
``--val-groups`` (default: the last group by name), ``fit`` the group before it; the detection
scores are taken on every image of the check groups, good and defective. Without groups it is
by image (15% fit, 15% check, seeded) and every image with a defect is scored with the check
images.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from inspect_core.data.datasets import Dataset, Sample, has_split, open_dataset
from inspect_core.data.groups import group_names, with_groups
from inspect_core.errors import DataError

SHARE = 0.15  # of the good images, each for fit and check, when there are no groups


@dataclass(frozen=True)
class GoodSplit:
    """The three parts as datasets of their own (``load`` reads image and mask), and how they
    were chosen: ``rule``, and the groups of each part (empty without groups)."""

    bank: Dataset
    fit: Dataset
    check: Dataset
    rule: str
    groups: dict[str, list[str]]
    defects: Dataset | None = None  # labelled defects that refine the threshold (not checked)
    fit_defects: tuple[Sample, ...] = ()  # the defect images of the fit groups

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "bank_images": len(self.bank),
            "fit_images": len(self.fit),
            "check_images": len(self.check),
            "refine_defect_images": len(self.defects) if self.defects is not None else 0,
            "groups": self.groups,
        }

    def with_defects(self, n: int, seed: int) -> GoodSplit:
        """Up to ``n`` labelled defect images set aside to refine the threshold: those of the
        fit groups (with groups), else drawn at random from the check images (which then no
        longer hold them). DataError when there is none."""
        if n <= 0:
            return self
        if self.groups:
            pool = list(self.fit_defects)
        else:
            check = self.check
            pool = [s for i, s in enumerate(check.samples) if not is_good(check, i)]
        if not pool:
            raise DataError(
                f"--refine-defects {n}: no labelled defect image to refine with ("
                + ("the fit group holds none" if self.groups else "the dataset holds none")
                + "); leave the option out to fit on good images alone"
            )
        order = np.random.default_rng(seed).permutation(len(pool))[:n]
        picked = [pool[int(i)] for i in sorted(order)]
        keep = {id(p) for p in picked}  # by image: the check images no longer hold them
        check = replace(self.check, samples=[s for s in self.check.samples if id(s) not in keep])
        defects = replace(self.check, split="refine", samples=picked)
        return replace(self, check=check, defects=defects)


def is_good(ds: Dataset, i: int) -> bool:
    """Whether image ``i`` of ``ds`` has no defect pixel (mask all background or ignore)."""
    s = ds.samples[i]
    if s.mask is None:
        return True
    _, mask = ds.load(i)
    return not bool(((mask > 0) & (mask != ds.ignore_index)).any())


def split_good(root: Path, groups: str | None, val_groups: str | None, seed: int = 0) -> GoodSplit:
    """The :class:`GoodSplit` of the dataset at ``root``; DataError when it has too few good
    images or groups for one."""
    train = with_groups(open_dataset(root, "train"), groups)
    # the MVTec layout's test split is read as "val" too: each image once
    splits = ("test",) if (root / "train" / "good").is_dir() else ("val", "test")
    other = [open_dataset(root, s) for s in splits if has_split(root, s)]
    flags = [is_good(train, i) for i in range(len(train))]
    good = [s for s, ok in zip(train.samples, flags) if ok]
    rest = [s for s, ok in zip(train.samples, flags) if not ok]
    rest += [s for ds in other for s in ds.samples]
    if len(good) < 3:
        raise DataError(
            f"{root}: {len(good)} good training image(s) (masks all background); a good-only "
            "model needs at least 3, and hundreds to be useful"
        )
    part = replace(train, samples=good)
    if train.groups:
        return _by_group(part, rest, val_groups)
    return _by_image(part, rest, seed)


def _by_image(good: Dataset, rest: list[Sample], seed: int) -> GoodSplit:
    order = np.random.default_rng(seed).permutation(len(good))
    n = max(1, round(SHARE * len(good)))
    fit, check, bank = order[:n], order[n : 2 * n], order[2 * n :]
    pick = [good.samples[int(i)] for i in check]
    return GoodSplit(
        bank=good.subset([int(i) for i in bank], "bank"),
        fit=good.subset([int(i) for i in fit], "fit"),
        check=replace(good, split="check", samples=pick + rest),
        rule=f"good train images at random (seed {seed}): {SHARE:.0%} fit, {SHARE:.0%} check; "
        "check adds every other image (defects, val/test)",
        groups={},
    )


def _by_group(good: Dataset, rest: list[Sample], val_groups: str | None) -> GoodSplit:
    names = group_names(good)
    known = sorted(set(names))
    check = [g.strip() for g in val_groups.split(",")] if val_groups else known[-1:]
    unknown = [g for g in check if g not in known]
    if unknown:
        raise DataError(
            f"--val-groups: {', '.join(unknown)} not among the groups of the good images "
            f"({', '.join(known)}); name groups that {good.groups_origin()}'s pattern finds"
        )
    left = [g for g in known if g not in check]
    if len(left) < 2:
        raise DataError(
            f"{good.root}: {len(known)} group(s) of good images ({', '.join(known)}); holding "
            "out whole groups to fit and check the threshold needs at least 3 (or give no "
            "groups pattern to split by image)"
        )
    fit = left[-1:]
    rest_groups = group_names(good, rest)
    return GoodSplit(
        bank=good.subset([i for i, g in enumerate(names) if g in left[:-1]], "bank"),
        fit=good.subset([i for i, g in enumerate(names) if g in fit], "fit"),
        check=replace(
            good,
            split="check",
            samples=[s for s, g in zip(good.samples, names) if g in check]
            + [s for s, g in zip(rest, rest_groups) if g in check],
        ),
        fit_defects=tuple(s for s, g in zip(rest, rest_groups) if g in fit),
        rule="whole groups: check = "
        + (f"--val-groups {val_groups}" if val_groups else "the last group by name")
        + ", fit = the group before it; check holds every image of its groups",
        groups={"bank": left[:-1], "fit": fit, "check": check},
    )
