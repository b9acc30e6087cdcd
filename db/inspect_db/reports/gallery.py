"""The report's ``gallery``: the recent FAIL and REVIEW images, each with the outlines of its
recorded regions, so that the HTML page shows every one of them: its overlay where one was
recorded and can be read, else the image itself with the regions outlined over it
(:mod:`inspect_db.reports.thumbs`), else a note that says which file is gone.

Two queries: the images (``ORDER BY inspected_at DESC LIMIT n`` over the index on verdict and
time) and their regions (by inspection, the first :data:`MAX_OUTLINES` of each).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inspect_db.reports.briefs import BRIEF_FIELDS, brief, columns
from inspect_db.reports.filters import Conditions
from inspect_db.reports.model import GalleryImage, Outline
from inspect_db.tables import I, R, S

MAX_OUTLINES = 100  # regions outlined per image (the page says how many more there are)
MAX_POINTS = 400  # points of one outline (a longer recorded polygon is thinned)


def gallery_images(conn: Connection, w: Conditions, limit: int) -> list[GalleryImage]:
    """The ``limit`` most recent FAIL and REVIEW inspections ``w`` selects, with or without
    an overlay, newest first, each with the outlines of its regions."""
    q = (
        sa.select(*columns(BRIEF_FIELDS), I.c.width, I.c.height)
        .join(S, S.c.id == I.c.station_id)
        .where(*w.insp, I.c.verdict.in_(("FAIL", "REVIEW")))
        .order_by(I.c.inspected_at.desc(), I.c.id.desc())
        .limit(limit)
    )
    rows = [brief(r) for r in conn.execute(q)]
    outlines = _outlines(conn, [r["id"] for r in rows])
    return [GalleryImage(**r, outlines=outlines.get(r["id"], [])) for r in rows]


def _outlines(conn: Connection, ids: list[int]) -> dict[int, list[Outline]]:
    """The first :data:`MAX_OUTLINES` regions of each inspection ``ids``, by inspection."""
    if not ids:
        return {}
    n = sa.func.row_number().over(partition_by=R.c.inspection_id, order_by=R.c.id).label("n")
    cols = (R.c.class_name, R.c.bbox_x, R.c.bbox_y, R.c.bbox_w, R.c.bbox_h, R.c.polygon)
    ranked = sa.select(R.c.inspection_id, *cols, n).where(R.c.inspection_id.in_(ids)).subquery()
    q = sa.select(ranked).where(ranked.c.n <= MAX_OUTLINES).order_by(ranked.c.inspection_id)
    out: dict[int, list[Outline]] = {}
    for r in conn.execute(q):
        box = (int(r.bbox_x), int(r.bbox_y), int(r.bbox_w), int(r.bbox_h))
        outline = Outline(class_name=r.class_name, bbox=box, polygon=polygon_points(r.polygon))
        out.setdefault(int(r.inspection_id), []).append(outline)
    return out


def polygon_points(value: Any) -> list[tuple[int, int]]:
    """A recorded polygon (JSON ``[[x, y], ...]``) as integer points, what is not a point left
    out, thinned to at most :data:`MAX_POINTS`."""
    points = []
    for p in value if isinstance(value, list) else []:
        if isinstance(p, (list, tuple)) and len(p) == 2:
            try:
                points.append((int(p[0]), int(p[1])))
            except (TypeError, ValueError, OverflowError):
                continue
    step = -(-len(points) // MAX_POINTS)  # ceil: every step-th point
    return points[::step] if step > 1 else points
