"""The rows an inspection becomes, cleaned for the database, and the INSERT that skips a row
whose key is already there.

:func:`inspection_values` / :func:`region_values` / :func:`model_values` build the rows of
:class:`~inspect_core.types.Inspection` objects, every value cleaned by
:mod:`inspect_db.records.sanitize` (no NUL, valid UTF-8, text cut to its column, no NaN in JSON);
:func:`insert_ignore` writes one with ``INSERT ... ON CONFLICT DO NOTHING``. The
:class:`~inspect_db.records.recorder.Recorder` puts them together.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from inspect_core.types import InputHealth, Inspection
from inspect_db.models import Base, InspectionRecord, Model, RegionRecord, Station, utc, utcnow
from inspect_db.records.sanitize import clean_row


def _table(model: type[Base]) -> sa.Table:
    """The table of a mapped class (SQLAlchemy types ``__table__`` as any FROM clause)."""
    table = model.__table__
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not mapped to one table")
    return table


INSP = _table(InspectionRecord)
REGION = _table(RegionRecord)
STATION = _table(Station)
MODEL = _table(Model)


def config_hash(inspection: Inspection) -> str:
    """What a station ran with: plugin, recipe, model and thresholds, hashed."""
    blob = json.dumps(
        {
            "plugin": inspection.plugin,
            "recipe": inspection.recipe,
            "model": inspection.model_sha256,
            "thresholds": inspection.thresholds,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


@lru_cache(maxsize=64)
def _insert_ignore_stmt(
    dialect: str,
    table: sa.Table,
    keys: tuple[str, ...],
    returning: sa.Column[Any] | None,
    where: Any = None,
) -> sa.Insert:
    """``INSERT ... ON CONFLICT (keys) [WHERE where] DO NOTHING [RETURNING col]``, built once per
    dialect and executed with parameters (building a statement per row costs more than running
    it). ``where`` names a partial unique index."""
    ins = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(table)
    stmt = ins.on_conflict_do_nothing(index_elements=list(keys), index_where=where)
    return stmt if returning is None else stmt.returning(returning)


def insert_ignore(
    conn: Connection,
    table: sa.Table,
    values: dict[str, Any],
    keys: list[str],
    returning: sa.Column[Any] | None = None,
    where: Any = None,
) -> Any:
    """INSERT that does nothing when ``keys`` already exist (in the partial unique index of
    ``where``, if given); returns ``returning`` or None."""
    name = conn.dialect.name
    if name in ("sqlite", "postgresql"):
        stmt = _insert_ignore_stmt(name, table, tuple(keys), returning, where)
        res = conn.execute(stmt, values)
        return None if returning is None else res.scalar_one_or_none()
    try:  # any other dialect: a savepoint around a plain INSERT
        with conn.begin_nested():
            res = conn.execute(sa.insert(table), values)
    except IntegrityError:
        return None
    key = res.inserted_primary_key if returning is not None else None
    return None if key is None else key[0]


def read_card(path: str | None, sha256: str) -> dict[str, Any] | None:
    """The model card at ``path`` if it names the model with ``sha256``; None when there is
    no path, the file is gone or unreadable, or it names another model (a stale card must not
    be stored as this model's; recording never fails because of a card)."""
    if not path:
        return None
    try:
        card = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(card, dict) or card.get("sha256") != sha256:
        return None
    return card


def card_version(card: dict[str, Any] | None) -> str | None:
    """A model's version: the card's ``version``, else the first 12 hex digits of its sha256."""
    if not card:
        return None
    return str(card.get("version") or str(card.get("sha256") or "")[:12] or "") or None


def inspection_values(insp: Inspection, station_id: int, model_id: int | None) -> dict[str, Any]:
    """The ``inspection`` row of an :class:`Inspection`."""
    v = insp.verdict
    at = insp.inspected_at if insp.inspected_at is not None else time.time()
    return clean_row(
        INSP,
        dict(
            station_id=station_id,
            model_id=model_id,
            plugin=insp.plugin or "",
            recipe=insp.recipe or "",
            source=insp.source,
            image_sha256=insp.image_sha256,
            width=int(insp.width),
            height=int(insp.height),
            captured_at=utc(insp.captured_at),
            inspected_at=utc(at),
            inspected_hour=int(at // 3600),
            latency_ms=float(insp.latency_ms),
            inspect_ms=_ms(insp.inspect_ms),
            queue_ms=_ms(insp.queue_ms),
            verdict=v.decision.value,
            fired=[h.to_dict() for h in v.hits],
            thresholds=insp.thresholds,
            part_id=insp.part_id,
            lot=insp.lot,
            error=insp.error,
            overlay_path=insp.overlay_path,
            capture_id=insp.capture_id,
            n_regions=len(v.regions),
            defect_area_px=int(sum(r.area_px for r in v.regions)),
            **health_values(insp.health),
        ),
    )


def health_values(health: InputHealth | None) -> dict[str, Any]:
    """The health columns of an inspection (revision 0008): all NULL when not measured."""
    q = health.quality if health is not None else None
    return dict(
        focus=None if q is None else float(q.focus),
        mean_level=None if q is None else float(q.mean),
        highlights=None if q is None else float(q.highlights),
        clipped_dark=None if q is None else float(q.clipped_dark),
        clipped_bright=None if q is None else float(q.clipped_bright),
        contrast=None if q is None else float(q.contrast),
        familiarity=(
            None if health is None or health.familiarity is None else float(health.familiarity)
        ),
        health_flag=None if health is None else health.flag,
    )


def _ms(value: float | None) -> float | None:
    return None if value is None else float(value)


def region_values(
    insp: Inspection, inspection_id: int, station_id: int, inspected_at: datetime
) -> list[dict[str, Any]]:
    """The ``region`` rows of an :class:`Inspection`."""
    out = []
    verdict = insp.verdict.decision.value
    for r in insp.verdict.regions:
        x, y, w, h = (int(c) for c in r.bbox)
        out.append(
            dict(
                inspection_id=inspection_id,
                station_id=station_id,
                inspected_at=inspected_at,
                verdict=verdict,
                plugin=insp.plugin or "",
                recipe=insp.recipe or "",
                class_id=int(r.class_id),
                class_name=r.class_name,
                bbox_x=x,
                bbox_y=y,
                bbox_w=w,
                bbox_h=h,
                area_px=int(r.area_px),
                area_mm2=None if r.area_mm2 is None else float(r.area_mm2),
                centroid_x=float(r.centroid[0]),
                centroid_y=float(r.centroid[1]),
                max_prob=float(r.max_prob),
                mean_prob=float(r.mean_prob),
                polygon=[[int(p[0]), int(p[1])] for p in r.polygon],
            )
        )
        clean_row(REGION, out[-1], json_too=False)  # the polygon is integers only
    return out


def model_values(
    sha256: str,
    plugin: str = "",
    recipe: str = "",
    version: str | None = None,
    card: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``model`` row of the model file with ``sha256``."""
    return clean_row(
        MODEL,
        dict(
            sha256=sha256,
            plugin=plugin,
            recipe=recipe,
            version=version,
            card=card,
            created_at=utcnow(),
        ),
    )
