"""The rows ``inspect report --csv`` writes: every matching inspection, or every region of
every matching inspection, streamed oldest first (``yield_per``: millions of rows never sit in
memory at once)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inspect_db.reports.briefs import columns
from inspect_db.reports.filters import ReportFilters, conditions, iso
from inspect_db.tables import I, M, R, S

__all__ = ["INSPECTION_FIELDS", "REGION_FIELDS", "inspection_rows", "region_rows"]

INSPECTION_FIELDS = (
    "id",
    "station",
    "plugin",
    "recipe",
    "source",
    "image_sha256",
    "width",
    "height",
    "captured_at",
    "inspected_at",
    "latency_ms",
    "inspect_ms",
    "queue_ms",
    "verdict",
    "fired",
    "n_regions",
    "defect_area_px",
    "part_id",
    "lot",
    "capture_id",
    "error",
    "overlay_path",
    "model_sha256",
)
REGION_FIELDS = (
    "inspection_id",
    "station",
    "source",
    "image_sha256",
    "verdict",
    "inspected_at",
    "class_id",
    "class_name",
    "bbox_x",
    "bbox_y",
    "bbox_w",
    "bbox_h",
    "area_px",
    "area_mm2",
    "centroid_x",
    "centroid_y",
    "max_prob",
    "mean_prob",
)


def inspection_rows(conn: Connection, f: ReportFilters) -> Iterator[dict[str, Any]]:
    """Every matching inspection, oldest first, streamed (for CSV)."""
    w = conditions(conn, f)
    q = (
        sa.select(*columns(INSPECTION_FIELDS))
        .join(S, S.c.id == I.c.station_id)
        .outerjoin(M, M.c.id == I.c.model_id)
        .where(*w.insp)
        .order_by(I.c.inspected_at, I.c.id)
    )
    for row in conn.execute(q.execution_options(yield_per=2000)):
        d = dict(row._mapping)
        d["fired"] = ";".join(h.get("rule", "") for h in (d["fired"] or []))
        d["captured_at"], d["inspected_at"] = iso(d["captured_at"]), iso(d["inspected_at"])
        yield d


def region_rows(conn: Connection, f: ReportFilters) -> Iterator[dict[str, Any]]:
    """Every region of every matching inspection, streamed (for CSV)."""
    w = conditions(conn, f)
    q = (
        sa.select(*columns(REGION_FIELDS, R))
        .join(I, I.c.id == R.c.inspection_id)
        .join(S, S.c.id == I.c.station_id)
        .where(*w.insp)
        .order_by(I.c.inspected_at, R.c.inspection_id, R.c.id)
    )
    for row in conn.execute(q.execution_options(yield_per=2000)):
        d = dict(row._mapping)
        d["inspected_at"] = iso(d["inspected_at"])
        yield d
