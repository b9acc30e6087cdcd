"""The images of the report's ``worst`` and ``gallery`` sections: the fields each shows and
the columns they are read from."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from inspect_db.reports.filters import iso
from inspect_db.tables import I, M, R, S

# the fields of an image in the report's ``worst`` and ``gallery`` sections
BRIEF_FIELDS = (
    "id",
    "station",
    "plugin",
    "recipe",
    "source",
    "image_sha256",
    "verdict",
    "n_regions",
    "defect_area_px",
    "inspected_at",
    "latency_ms",
    "overlay_path",
    "part_id",
    "lot",
)
# the region table's copies of its inspection's columns: the inspection's own are read
_COPIED = ("station_id", "inspected_at", "verdict", "plugin", "recipe")


def columns(fields: tuple[str, ...], table: sa.Table = I) -> list[Any]:
    """The columns of ``fields``: ``station`` (its name) and ``model_sha256`` from their
    tables, the others from ``table``, or the inspection table where ``table`` lacks them or
    only copies them."""
    special = {"station": S.c.name, "model_sha256": M.c.sha256}
    return [
        special[f].label(f)
        if f in special
        else table.c[f]
        if f in table.c and not (table is R and f in _COPIED)
        else I.c[f]
        for f in fields
    ]


def brief(row: Any) -> dict[str, Any]:
    """A row of :data:`BRIEF_FIELDS` (and more) as the report's values (times in ISO 8601)."""
    d = dict(row._mapping)
    d["inspected_at"] = iso(d["inspected_at"])
    return d
