"""The images a run validates on, and so picks its best checkpoint by: the dataset's ``val``
split, or, where it has none, a part of ``train`` held out (never ``test``: a model selected
on its test images has no honest test score left).

The held-out part is chosen by group where the dataset names groups (classes.json's
``"groups"`` or ``--groups``: a regex whose one capture group, applied to each file stem, names
the part, tile or video an image comes from; near-identical images of one group on both sides
would make validation flatter than the line), else as a seeded random sample. Either way about
15% of the training images, at least one, never more than a third.

``--val-groups`` names the groups to hold out instead (:func:`hold_out_groups`): train and val
are pooled, every image of those groups validates, and the val split's other images (groups
the model trains on) give the same-distribution score beside it, computed once at the end.
The choice is logged and recorded in the model card.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from inspect_core.data.datasets import (
    CARD_GROUPS,
    Dataset,
    has_split,
    open_dataset,
    open_listed,
)
from inspect_core.data.groups import group_names, members, with_groups
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
    unseen: bool = False  # True: no image of these groups is trained on (a score on new groups)
    seen_images: tuple[str, ...] = ()  # --val-groups: val-split images of the trained groups

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Splits:
    """What a run trains on, what picks its checkpoint (``val``), and how that was chosen."""

    train: Dataset
    val: Dataset
    holdout: Holdout
    seen: Dataset | None = None  # with --val-groups: val-split images of the trained groups


def open_splits(
    root: str,
    seed: int,
    log: Callable[[str], None],
    groups: str | None = None,
    val_groups: list[str] | None = None,
) -> Splits:
    """The training and validation datasets of ``root`` and how the validation set was chosen:
    the named ``val_groups`` (:func:`hold_out_groups`), its ``val`` split, or a part of
    ``train`` carved out (:func:`carve_validation`). ``groups`` overrides classes.json's
    pattern."""
    train = with_groups(open_dataset(root, "train"), groups)
    if val_groups is not None:
        return hold_out_groups(train, val_groups, log)
    if has_split(root, "val"):
        val = open_dataset(root, "val")
        images = [str(s.image.relative_to(val.root)) for s in val.samples]
        how = Holdout("val split", "the dataset's val split", len(val), images, [])
        return Splits(train, val, how)
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
    return Splits(train, val, holdout)


def hold_out_groups(train: Dataset, names: list[str], log: Callable[[str], None]) -> Splits:
    """Pool ``train`` with the dataset's val split (if any); validate on every image of the
    groups ``names``, train on the rest; the val split's images of other groups are ``seen``
    (the same-distribution score). DataError for a group that has no images, or for holding
    out all of them."""
    pool = list(train.samples)
    n_train = len(pool)
    if has_split(train.root, "val"):
        pool += open_dataset(train.root, "val").samples
    pooled = replace(train, samples=pool)
    names_of = group_names(pooled)
    by_group = members(names_of)
    if not names:
        raise DataError("--val-groups names no group; give them comma-separated, e.g. tile2,tile4")
    unknown = [g for g in names if g not in by_group]
    if unknown:
        known = ", ".join(f"{g} ({len(i)} images)" for g, i in by_group.items())
        raise DataError(
            f"--val-groups {','.join(unknown)}: no such group in {train.root} by the pattern "
            f"{train.groups!r}; its groups are {known}"
        )
    if set(names) >= set(by_group):
        raise DataError(
            f"--val-groups names every group of {train.root}; leave at least one to train on"
        )
    held = sorted(i for g in set(names) for i in by_group[g])
    taken = set(held)
    rest = [i for i in range(len(pool)) if i not in taken]
    trained = [i for i in rest if i < n_train]
    if not trained:
        raise DataError(
            f"--val-groups {','.join(names)}: holding them out leaves no image of "
            f"{train.root / 'train'} to train on (the other groups are only in val); hold out "
            "fewer groups, or move some of the val split's groups into train"
        )
    trained_groups = {names_of[i] for i in trained}
    # the same-distribution score: val-split images of groups the model really trains on
    seen = [i for i in rest if i >= n_train and names_of[i] in trained_groups]
    val = pooled.subset(held, "val")
    images = [str(s.image.relative_to(train.root)) for s in val.samples]
    rule = (
        f"whole groups named by --val-groups ({', '.join(sorted(set(names)))}) by "
        f"{train.groups!r}, from train and val pooled; {len(by_group)} groups in all"
    )
    log(
        f"validating on {len(held)} images of the groups {', '.join(sorted(set(names)))}, none "
        f"trained on; training on {len(trained)} images of the other groups; "
        f"{len(seen)} val-split images of those groups give the same-distribution score"
        + (
            f"; {len(rest) - len(trained) - len(seen)} val-split images of groups with no "
            "training image take no part"
            if len(rest) > len(trained) + len(seen)
            else ""
        )
    )
    seen_ds = pooled.subset(seen, "val-seen") if seen else None
    seen_images = tuple(
        str(s.image.relative_to(train.root)) for s in pooled.subset(seen, "").samples
    )
    how = Holdout("unseen groups", rule, len(held), images, sorted(set(names)), True, seen_images)
    return Splits(pooled.subset(trained, "train"), val, how, seen_ds)


def seen_by_weights(holdout: Holdout, card: dict, dataset: str) -> list[str]:
    """The held-out images that the weights a run starts from (their model ``card``) were
    trained on: a score on them is no score on unseen groups. Weights of another dataset saw
    none; without a list of their validation images, every image of the train split counts as
    trained on."""
    if not holdout.unseen or (card.get("dataset") or {}).get("name") != dataset:
        return []
    theirs = card.get("validation_split") or {}
    their_val = set(theirs.get("images") or [])
    if theirs.get("source") == "unseen groups" and not theirs.get("unseen"):
        their_val = set()  # their own held-out images were seen by the weights they came from
    pooled = theirs.get("source") == "unseen groups"  # they trained on train and val pooled
    return [
        im for im in holdout.images if im not in their_val and (pooled or im.startswith("train/"))
    ]


def not_unseen(holdout: Holdout, seen: list[str], weights: str) -> Holdout:
    """``holdout`` no longer claimed unseen: ``weights`` (what the run started from) trained
    on ``seen`` of its images (none listed: they have no card to tell)."""
    why = (
        f"trained on {len(seen)} of these {holdout.count} images"
        if seen
        else "have no model card: what they trained on is unknown"
    )
    return replace(
        holdout,
        unseen=False,
        rule=f"{holdout.rule}; not unseen: the weights it started from ({weights}) {why}",
    )


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
        Holdout("carved from train", rule, len(held), images, groups, unseen=bool(groups)),
    )


def _by_group(train: Dataset, target: int, cap: int, seed: int) -> tuple[list[int], list[str], str]:
    """Whole groups, in a seeded random order, until ``target`` images (at most ``cap``)."""
    names = group_names(train)
    groups = members(names)
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    held: list[str] = []
    total = 0
    for g in order:
        if total >= target:
            break
        if total + len(groups[g]) <= cap:
            held.append(g)
            total += len(groups[g])
    if not held or len(held) == len(groups):
        sizes = ", ".join(f"{g}: {len(groups[g])}" for g in sorted(groups)[:6])
        raise DataError(
            f"{train.groups_origin()}: the groups pattern {train.groups!r} gives "
            f"{len(groups)} group(s) ({sizes}{', ...' if len(groups) > 6 else ''}) and no "
            f"set of whole groups is at most a third of the {len(names)} training images; add "
            "a val/ split, or a pattern with smaller groups"
        )
    rule = (
        f"whole groups by {train.groups!r}: {len(held)} of {len(groups)} groups "
        f"({', '.join(sorted(held))}), seed {seed}"
    )
    return sorted(i for g in held for i in groups[g]), sorted(held), rule


def held_out_dataset(card: dict, data: str, groups: str | None = None) -> Dataset:
    """The images a trained model was validated on (its card's ``validation_split``), from
    the dataset folder ``data``: what every later choice (test-time copies, prior correction)
    is decided on, so that it too is decided on images training did not see. Their groups
    pattern: ``groups``, else the one the run trained with, else classes.json's."""
    split = card.get("validation_split") or {}
    pattern = groups if groups is not None else (card.get("training") or {}).get("groups")
    if split.get("source", "val split") == "val split":
        ds = open_dataset(data, "val")
        if pattern is not None and pattern != ds.groups:
            origin = "--groups" if groups is not None else CARD_GROUPS
            ds = replace(with_groups(ds, pattern), groups_from=origin)
        return ds
    return open_listed(data, list(split.get("images") or []), "val", pattern)


def seen_dataset(card: dict, data: str) -> Dataset | None:
    """The val-split images of the groups a model trained on, where its card lists them
    (``--val-groups``): the same-distribution score beside the unseen one."""
    listed = list((card.get("validation_split") or {}).get("seen_images") or [])
    if not listed:
        return None
    return open_listed(data, listed, "val-seen", (card.get("training") or {}).get("groups"))
