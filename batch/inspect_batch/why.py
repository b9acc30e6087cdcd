"""Why a verdict changed: the classes whose regions differ between the recorded inspection
(its ``region`` rows: class, area, bounding box) and the candidate's result, with their counts
and areas on each side, and the rules that fired on each side.

The recorded side is read from the database for the changed images the page and the JSON
show (a few hundred at most), one query per finished chunk; the candidate's side comes back
with each :class:`~inspect_batch.items.ItemResult`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from inspect_batch.items import Fired, ItemResult, RegionBox
from inspect_db.engine import connect
from inspect_db.tables import I, R


@dataclass(frozen=True)
class RecordedSide:
    """What was recorded for one inspection: its regions and the rules that fired."""

    regions: tuple[RegionBox, ...] = ()
    fired: tuple[Fired, ...] = ()


@dataclass(frozen=True)
class ClassChange:
    """One class whose regions differ: count and total area recorded, and the candidate's."""

    class_name: str
    recorded_regions: int
    recorded_area_px: int
    candidate_regions: int
    candidate_area_px: int

    def text(self) -> str:
        """``scratch: 2 regions 410 px -> 0``, ``patches: new, 1 region 1200 px``, or, for
        regions of the same count and area elsewhere in the image, ``... (moved)``."""
        before = _regions(self.recorded_regions, self.recorded_area_px)
        after = _regions(self.candidate_regions, self.candidate_area_px)
        if self.recorded_regions == 0:
            return f"{self.class_name}: new, {after}"
        if self.candidate_regions == 0:
            return f"{self.class_name}: {before} -> 0"
        moved = " (moved)" if before == after else ""
        return f"{self.class_name}: {before} -> {after}{moved}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.class_name,
            "recorded": {"regions": self.recorded_regions, "area_px": self.recorded_area_px},
            "candidate": {"regions": self.candidate_regions, "area_px": self.candidate_area_px},
            "text": self.text(),
        }


@dataclass(frozen=True)
class WhyChanged:
    """The classes whose regions differ (by class name) and the rules fired on each side."""

    classes: tuple[ClassChange, ...]
    recorded_fired: tuple[Fired, ...]
    candidate_fired: tuple[Fired, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": [c.to_dict() for c in self.classes],
            "recorded_fired": [f._asdict() for f in self.recorded_fired],
            "candidate_fired": [f._asdict() for f in self.candidate_fired],
        }


def _regions(n: int, area: int) -> str:
    return "0" if n == 0 else f"{n} region{'s' if n != 1 else ''} {area} px"


def explain(recorded: RecordedSide, result: ItemResult) -> WhyChanged:
    """The classes whose regions (area and box, as a multiset) differ between ``recorded`` and
    the candidate's ``result``, in class-name order, and the rules fired on each side."""
    before = _by_class(recorded.regions)
    after = _by_class(result.regions)
    changes = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name, []), after.get(name, [])
        if sorted(old) == sorted(new):
            continue
        changes.append(
            ClassChange(
                name,
                len(old),
                sum(r.area_px for r in old),
                len(new),
                sum(r.area_px for r in new),
            )
        )
    return WhyChanged(tuple(changes), recorded.fired, result.fired)


def _by_class(regions: Iterable[RegionBox]) -> dict[str, list[RegionBox]]:
    out: dict[str, list[RegionBox]] = {}
    for r in regions:
        out.setdefault(r.class_name, []).append(r)
    return out


def recorded_sides(engine: sa.Engine, inspection_ids: list[int]) -> dict[int, RecordedSide]:
    """The recorded regions and rules fired of each of ``inspection_ids`` (one short read)."""
    if not inspection_ids:
        return {}
    regions: dict[int, list[RegionBox]] = {i: [] for i in inspection_ids}
    fired: dict[int, tuple[Fired, ...]] = {}
    rq = (
        sa.select(R.c.inspection_id, R.c.class_name, R.c.area_px)
        .add_columns(R.c.bbox_x, R.c.bbox_y, R.c.bbox_w, R.c.bbox_h)
        .where(R.c.inspection_id.in_(inspection_ids))
        .order_by(R.c.inspection_id, R.c.id)
    )
    fq = sa.select(I.c.id, I.c.fired).where(I.c.id.in_(inspection_ids))
    with connect(engine) as conn:
        for r in conn.execute(rq):
            box = (int(r.bbox_x), int(r.bbox_y), int(r.bbox_w), int(r.bbox_h))
            regions[int(r.inspection_id)].append(RegionBox(str(r.class_name), int(r.area_px), box))
        for r in conn.execute(fq):
            fired[int(r.id)] = _fired(r.fired)
    return {i: RecordedSide(tuple(regions[i]), fired.get(i, ())) for i in inspection_ids}


def _fired(value: Any) -> tuple[Fired, ...]:
    """The ``fired`` column (a list of RuleHit dicts) as rule and decision pairs; anything
    else (a record from a writer that stored none) as nothing fired."""
    if not isinstance(value, list):
        return ()
    return tuple(
        Fired(str(h.get("rule", "")), str(h.get("decision", "")))
        for h in value
        if isinstance(h, dict)
    )
