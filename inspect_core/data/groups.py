"""Groups: the sequence, tile, lot, day or camera an image comes from, named by a regex on its
file stem (classes.json's ``"groups"``, or ``--groups``). Images of one group look alike; a
score on images of groups the model trained on says little about a new lot, a new camera or a
cleaned lens, so validation holds out whole groups and evaluation reports each group apart."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from inspect_core.data.datasets import Dataset, Sample, check_groups_pattern
from inspect_core.errors import DataError

__all__ = ["group_names", "with_groups", "members"]


def with_groups(ds: Dataset, pattern: str | None) -> Dataset:
    """``ds`` with ``pattern`` as its groups (``None`` keeps classes.json's)."""
    if pattern is None:
        return ds
    check_groups_pattern(pattern, "--groups")
    return replace(ds, groups=pattern, groups_from="--groups")


def group_names(ds: Dataset, samples: Sequence[Sample] | None = None) -> list[str]:
    """The group of every image of ``ds`` (or of ``samples``): the capture group of
    ``ds.groups`` in its file stem; DataError naming the images it does not match."""
    if not ds.groups:
        raise DataError(
            f'{ds.root / "classes.json"}: no groups pattern; add "groups" (a regex whose one '
            'capture group names the group in each file stem, e.g. "^(tile\\\\d+)_") or give '
            "--groups"
        )
    pattern = re.compile(ds.groups)
    names, missed = [], []
    for s in ds.samples if samples is None else samples:
        m = pattern.search(s.image.stem)
        if m is None or m.group(1) is None:
            missed.append(s.image.name)
        else:
            names.append(m.group(1))
    if missed:
        raise DataError(
            f"{ds.groups_origin()}: the groups pattern {ds.groups!r} does not match "
            f"{len(missed)} image(s) ({', '.join(missed[:3])}"
            f"{', ...' if len(missed) > 3 else ''}); widen it so every file stem names its group"
        )
    return names


def members(names: Sequence[str]) -> dict[str, list[int]]:
    """Group name -> the indices of its images, groups sorted by name."""
    out: dict[str, list[int]] = {}
    for i, g in enumerate(names):
        out.setdefault(g, []).append(i)
    return dict(sorted(out.items()))
