"""The regions operators draw (``review_mark``, revision 0007): their checks, their geometry as
compact JSON text, and reading them back with their decisions.

A mark is written with its decision, in the decision's transaction, and never edited. Its
points are in the recorded image's pixels (``inspection.width`` by ``height``); the checks here
are the server's, whatever the page sent: every point a finite number inside the image, a
bounded number of points and marks (a decision stays a few kB), a brush width within bounds,
a polygon that encloses an area, a region replaced at most once and only one of the item's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, TypeGuard

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inspect_db.errors import ReviewError
from inspect_db.models import utcnow
from inspect_db.tables import MK, RL, RV, I
from inspect_review.storage.types import Mark, check_class_name

MAX_MARKS = 40  # drawn in one decision
MAX_POLYGON_POINTS = 400
MAX_STROKE_POINTS = 1000
MAX_POINTS = 6000  # over every mark of a decision
MIN_WIDTH, MAX_WIDTH = 1.0, 64.0  # a brush's width, image pixels
MIN_AREA = 1.0  # px²: a polygon's points must not lie on one line


def check_marks(
    marks: tuple[Mark, ...], width: int, height: int, regions: set[int], inspection_id: int
) -> None:
    """:class:`ReviewError` naming the first mark that cannot be recorded on an inspection of
    ``width`` x ``height`` pixels whose regions are ``regions``, and why."""
    if len(marks) > MAX_MARKS:
        raise ReviewError(
            f"{len(marks)} drawn marks: a decision takes at most {MAX_MARKS}; join small ones "
            "into one polygon"
        )
    total = sum(len(m.points) for m in marks)
    if total > MAX_POINTS:
        raise ReviewError(
            f"the drawn marks have {total} points in all, over {MAX_POINTS}: draw them with "
            "fewer points (a polygon's corners, shorter brush strokes)"
        )
    replaced: dict[int, int] = {}
    for n, m in enumerate(marks, 1):
        what = f"drawn mark {n} ({'brush stroke' if m.kind == 'stroke' else 'polygon'})"
        _check_shape(m, what, width, height)
        if m.class_name is not None:
            try:
                check_class_name(m.class_name)
            except ReviewError as e:
                raise ReviewError(f"{what}: {e}") from None
        r = m.replaces_region_id
        if r is None:
            continue
        if r not in regions:
            raise ReviewError(
                f"{what} replaces region id {r}, which is not a region of inspection "
                f"{inspection_id}; reload the item and draw it again"
            )
        if r in replaced:
            raise ReviewError(
                f"{what} and drawn mark {replaced[r]} both replace region id {r}: keep one "
                "outline per region (delete the other)"
            )
        replaced[r] = n


def _check_shape(m: Mark, what: str, width: int, height: int) -> None:
    most = MAX_STROKE_POINTS if m.kind == "stroke" else MAX_POLYGON_POINTS
    least = 1 if m.kind == "stroke" else 3
    if not least <= len(m.points) <= most:
        raise ReviewError(
            f"{what} has {len(m.points)} points: give {least} to {most}"
            + ("" if len(m.points) >= least else " (click each corner, then Enter)")
        )
    for k, (x, y) in enumerate(m.points, 1):
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ReviewError(f"{what}: point {k} is not a number; reload the item")
        if not (0 <= x <= width and 0 <= y <= height):
            raise ReviewError(
                f"{what}: point {k} at ({x:g}, {y:g}) lies outside the image ({width}x{height} "
                "px); draw inside the picture"
            )
    if m.kind == "stroke":
        w = m.width if m.width is not None else math.nan
        if not (math.isfinite(w) and MIN_WIDTH <= w <= MAX_WIDTH):
            raise ReviewError(
                f"{what}: brush width {w:g} px; give {MIN_WIDTH:g} to {MAX_WIDTH:g} px ([ and ])"
            )
    elif polygon_area(m.points) < MIN_AREA:
        raise ReviewError(
            f"{what} encloses no area (its points lie on one line); draw around the defect, or "
            "use the brush (B) for a thin one"
        )


def polygon_area(points: Iterable[tuple[float, float]]) -> float:
    """The area a closed polygon encloses (shoelace), in square pixels."""
    p = list(points)
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(p, p[1:] + p[:1]))) / 2


def _number(v: float) -> float | int:
    r = round(v, 1)
    return int(r) if r == int(r) else r


def points_text(points: Iterable[tuple[float, float]]) -> str:
    """Points as compact JSON text, ``[[x,y],...]``, to a tenth of a pixel."""
    return json.dumps([[_number(x), _number(y)] for x, y in points], separators=(",", ":"))


def points_of(text: Any) -> tuple[tuple[float, float], ...]:
    """Points from their stored JSON text (tolerant: what is not a pair of numbers is left
    out, as a recorded region's outline is read)."""
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return ()
    out = []
    for p in value if isinstance(value, list) else []:
        if isinstance(p, list) and len(p) == 2 and all(is_number(v) for v in p):
            out.append((float(p[0]), float(p[1])))
    return tuple(out)


def is_number(v: Any) -> TypeGuard[int | float]:
    """Whether ``v`` (read from JSON) is a finite number of a size a pixel can have (a bool
    is not one; neither is an integer past what a float holds exactly)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return abs(v) < 1e15 if isinstance(v, int) else math.isfinite(v)


def write_marks(conn: Connection, review_id: int, marks: tuple[Mark, ...]) -> None:
    """Add the rows of a decision's marks (checked already by :func:`check_marks`)."""
    if not marks:
        return
    conn.execute(
        sa.insert(MK),
        [
            dict(
                review_id=review_id,
                number=n,
                kind=m.kind,
                points=points_text(m.points),
                width=m.width,
                label=m.label,
                class_id=m.class_id,
                class_name=m.class_name,
                replaces_region_id=m.replaces_region_id,
            )
            for n, m in enumerate(marks, 1)
        ],
    )


def read_marks(conn: Connection, review_ids: list[int]) -> dict[int, list[Mark]]:
    """The marks of these decisions (review id -> marks in their order); a row whose label
    and class do not agree is read as unsure rather than failing the page."""
    out: dict[int, list[Mark]] = {}
    if not review_ids:
        return out
    q = sa.select(MK).where(MK.c.review_id.in_(review_ids)).order_by(MK.c.review_id, MK.c.number)
    for r in conn.execute(q):
        points = points_of(r.points)
        try:
            mark = Mark(
                r.kind,
                points,
                r.label,
                r.class_name if r.label == "defect" else None,
                r.class_id,
                r.width if r.kind == "stroke" else None,
                r.replaces_region_id,
            )
        except ValueError:
            mark = Mark(r.kind, points, "unsure", width=1.0 if r.kind == "stroke" else None)
        out.setdefault(r.review_id, []).append(mark)
    return out


def given_names(
    conn: Connection, plugin: str, recipe: str, days: int = 90, limit: int = 50
) -> list[str]:
    """The class names operators gave regions and marks of ``plugin:recipe`` in decisions of
    the last ``days`` (names the recipe's model does not have: no class index), sorted: what the
    page offers after the recipe's classes. The window keeps this a range over recent
    decisions (``ix_review_decided``), whatever the size of the history."""
    since = utcnow() - timedelta(days=days)
    recent = (
        sa.select(RV.c.id)
        .join(I, I.c.id == RV.c.inspection_id)
        .where(RV.c.decided_at >= since, I.c.plugin == plugin, I.c.recipe == recipe)
    )
    names: set[str] = set()
    for table in (RL, MK):
        q = (
            sa.select(table.c.class_name)
            .where(
                table.c.review_id.in_(recent),
                table.c.label == "defect",
                table.c.class_id.is_(None),
                table.c.class_name.is_not(None),
            )
            .distinct()
            .limit(limit)
        )
        names.update(str(n) for n in conn.execute(q).scalars())
    return sorted(names)[:limit]
