"""Reading the reviewed images for ``inspect review export``: each inspection's latest decision
with the label of every region, the region's outline, the regions the operator drew, and the
classes of the model that judged it. The files are written by :mod:`inspect_review.export`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inspect_db.errors import BadFilter
from inspect_db.reports.filters import parse_when
from inspect_db.tables import RL, RV, I, M, R, S, U
from inspect_review.storage.marks import read_marks
from inspect_review.storage.queue import card_classes, polygon_points
from inspect_review.storage.types import UNDO, Mark


@dataclass(frozen=True)
class ExportFilters:
    """Which decisions an export takes: made in [since, until), at a station, for a recipe."""

    since: datetime | None = None
    until: datetime | None = None
    station: str | None = None
    recipe: str | None = None

    @classmethod
    def parse(
        cls,
        since: str | None = None,
        until: str | None = None,
        station: str | None = None,
        recipe: str | None = None,
        now: datetime | None = None,
    ) -> ExportFilters:
        s = parse_when(since, now, option="--since") if since is not None else None
        u = parse_when(until, now, option="--until") if until is not None else None
        if s is not None and u is not None and s >= u:
            raise BadFilter(f"--since {since!r} is not before --until {until!r}; swap them")
        for option, value in (("--station", station), ("--recipe", recipe)):
            if value is not None and not value.strip():
                raise BadFilter(f"{option} {value!r}: empty; give a name or leave {option} out")
        return cls(s, u, station, recipe)


@dataclass(frozen=True)
class LabelledRegion:
    """A region of a reviewed image: its outline, the model's class, the operator's label."""

    region_id: int
    polygon: list[list[int]]
    bbox: tuple[int, int, int, int]
    model_class: str
    label: str  # defect, not_defect or unsure
    class_name: str | None  # for a defect: the class the operator confirmed or chose


@dataclass(frozen=True)
class ReviewedImage:
    """One reviewed inspection as the export needs it."""

    inspection_id: int
    review_id: int
    station: str
    plugin: str
    recipe: str
    source: str
    overlay_path: str | None
    width: int
    height: int
    image_sha256: str
    inspected_at: datetime
    model_verdict: str
    verdict: str  # the operator's
    reviewer: str
    decided_at: datetime
    card_classes: list[str] | None
    regions: list[LabelledRegion]
    marks: list[Mark] = field(default_factory=list)  # drawn, in image pixels (width x height)


def reviewed_images(conn: Connection, f: ExportFilters) -> Iterator[ReviewedImage]:
    """Every inspection whose latest decision matches ``f``, oldest inspection first (one
    whose latest row is an undo is pending again: left out)."""
    latest = (
        sa.select(sa.func.max(RV.c.id).label("review_id"))
        .group_by(RV.c.inspection_id)
        .subquery("latest")
    )
    q = (
        sa.select(
            I,
            S.c.name.label("station"),
            M.c.card,
            RV.c.id.label("review_id"),
            RV.c.verdict.label("decided"),
            RV.c.decided_at,
            U.c.name.label("reviewer"),
        )
        .select_from(latest)
        .join(RV, RV.c.id == latest.c.review_id)
        .join(I, I.c.id == RV.c.inspection_id)
        .join(S, S.c.id == I.c.station_id)
        .join(U, U.c.id == RV.c.user_id)
        .outerjoin(M, M.c.id == I.c.model_id)
        .where(*_conditions(f), RV.c.model_verdict != UNDO)
        .order_by(I.c.inspected_at, I.c.id)
    )
    for row in conn.execute(q).all():
        marks = read_marks(conn, [row.review_id]).get(row.review_id, [])
        yield _image(row, _regions(conn, row.review_id, row.id), marks)


def _conditions(f: ExportFilters) -> list[Any]:
    w: list[Any] = []
    if f.since is not None:
        w.append(RV.c.decided_at >= f.since)
    if f.until is not None:
        w.append(RV.c.decided_at < f.until)
    if f.station is not None:
        w.append(S.c.name == f.station)
    if f.recipe is not None:
        w.append(I.c.recipe == f.recipe)
    return w


def _regions(conn: Connection, review_id: int, inspection_id: int) -> list[LabelledRegion]:
    q = (
        sa.select(
            R.c.id,
            R.c.polygon,
            R.c.bbox_x,
            R.c.bbox_y,
            R.c.bbox_w,
            R.c.bbox_h,
            R.c.class_name,
            RL.c.label,
            RL.c.class_name.label("decided_class"),
        )
        .outerjoin(RL, sa.and_(RL.c.region_id == R.c.id, RL.c.review_id == review_id))
        .where(R.c.inspection_id == inspection_id)
        .order_by(R.c.id)
    )
    return [
        LabelledRegion(
            r.id,
            polygon_points(r.polygon),
            (r.bbox_x, r.bbox_y, r.bbox_w, r.bbox_h),
            r.class_name,
            r.label or "unsure",  # a region no decision labels: no one judged it
            r.decided_class,
        )
        for r in conn.execute(q)
    ]


def _image(row: Any, regions: list[LabelledRegion], marks: list[Mark]) -> ReviewedImage:
    return ReviewedImage(
        row.id,
        row.review_id,
        row.station,
        row.plugin,
        row.recipe,
        row.source,
        row.overlay_path,
        row.width,
        row.height,
        row.image_sha256,
        row.inspected_at,
        row.verdict,
        row.decided,
        row.reviewer,
        row.decided_at,
        card_classes(row.card),
        regions,
        marks,
    )
