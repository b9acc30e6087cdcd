"""The report's data: a few aggregate SQL queries over the filtered inspections.

:func:`build_report` returns a typed :class:`~inspect_db.reports.model.Report` (its
:meth:`~inspect_db.reports.model.Report.to_dict` is what ``inspect report --json`` prints) with
the sections ``verdicts``, ``stations`` (yield per station), ``pareto`` (defects by class),
``worst`` (largest defect area), ``latency_ms`` (p50/p95; split in ``inspect_ms``, the time
spent on the image, and ``queue_ms``, its wait behind others), ``timeline`` (counts per hour or
day), ``review`` (operator review: reviewed and pending, agreement per station and class,
overturned verdicts per day, corrections per model version;
:mod:`inspect_db.reports.review_figures`), ``input_health`` (where measured;
:mod:`inspect_db.reports.input_health`), ``model_versions`` (images, verdicts and latency
per model version; :mod:`inspect_db.reports.versions`) and, on request, ``gallery`` (recent
FAIL/REVIEW images, with the outlines of their regions; :mod:`inspect_db.reports.gallery`).
Every section is one GROUP BY / ORDER BY ... LIMIT query served by the indexes in
:mod:`inspect_db.models`; Python only loops over groups, never over inspections (the rows
for CSV export: :mod:`inspect_db.reports.export`).

Times are naive UTC in the database and ISO 8601 with ``Z`` in the report.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from inspect_core.types import VERDICTS
from inspect_db.engine import connect, safe_url
from inspect_db.errors import BadFilter
from inspect_db.migrate import ensure_schema
from inspect_db.models import utcnow
from inspect_db.reports.briefs import BRIEF_FIELDS, brief, columns
from inspect_db.reports.filters import Conditions, ReportFilters, conditions, iso
from inspect_db.reports.gallery import gallery_images
from inspect_db.reports.input_health import input_health
from inspect_db.reports.model import Report
from inspect_db.reports.review_figures import review_figures
from inspect_db.reports.versions import model_versions
from inspect_db.tables import I, R, S

StationRecipe = tuple[int, str, str]  # a station id, and a plugin and recipe it ran
StationRow = sa.Row[*tuple[Any, ...]]  # a row of S: id, name, plugin, recipe


def _bucket_iso(hour: int, unit: str) -> str:
    """The start of an hour (or of the day, when hour is a day number) in ISO 8601."""
    t = datetime(1970, 1, 1) + timedelta(hours=hour * (24 if unit == "day" else 1))
    return t.isoformat() + "Z"


def _span(conn: Connection, f: ReportFilters, w: Conditions) -> timedelta | None:
    """How long the report covers: the filters' range, else the inspections' first to last."""
    lo, hi = f.since, f.until
    if lo is None or hi is None:
        first, last = conn.execute(
            sa.select(sa.func.min(I.c.inspected_at), sa.func.max(I.c.inspected_at)).where(*w.insp)
        ).one()
        lo, hi = lo or _dt(first), hi or _dt(last)
    return None if lo is None or hi is None else hi - lo


def _dt(v: Any) -> datetime | None:
    if v is None or isinstance(v, datetime):
        return v
    return datetime.fromisoformat(str(v))  # SQLite's min()/max() give the stored text


def build_report(
    db: Engine | Connection,
    filters: ReportFilters | None = None,
    *,
    worst: int = 10,
    bucket: str = "auto",
    gallery: int = 0,
) -> Report:
    """The report over the inspections that match ``filters`` (see the module docstring).

    ``worst``: how many images with the largest defect area; ``bucket``: ``hour``, ``day`` or
    ``auto`` (hours for up to 3 days, else days); ``gallery``: how many recent FAIL/REVIEW
    inspections to list, with or without an overlay (0 = none). Given a connection, the caller has
    checked the schema (:func:`inspect_db.migrate.ensure_schema`).
    """
    if isinstance(db, Engine):
        ensure_schema(db)  # an empty database is migrated, an outdated one refused
        with connect(db) as conn:
            return build_report(conn, filters, worst=worst, bucket=bucket, gallery=gallery)
    if bucket not in ("auto", "hour", "day"):
        raise BadFilter(f"bucket {bucket!r}: use hour, day or auto")
    conn, f = db, filters or ReportFilters()
    w = conditions(conn, f)
    span = _span(conn, f, w)
    unit = (
        bucket
        if bucket != "auto"
        else ("hour" if span is None or span <= timedelta(days=3) else "day")
    )
    stations = {r.id: r for r in conn.execute(sa.select(S.c.id, S.c.name, S.c.plugin, S.c.recipe))}
    summary = _summary(conn, w, unit, span, stations)
    total = summary.pop("total")
    latency = summary.pop("latency_ms")
    latency.update(_percentiles(conn, w, total))
    report: dict[str, Any] = {
        "database": safe_url(conn.engine.url),
        "generated_at": iso(utcnow()),
        "filters": f.to_dict(),
        "total": total,
        **summary,
        "pareto": _pareto(conn, w),
        "worst": _worst(conn, w, worst),
        "latency_ms": latency,
        **{c: _timing(conn, w, c) for c in ("inspect_ms", "queue_ms")},
        "model_versions": model_versions(conn, w),
        "review": review_figures(conn, w, summary["verdicts"]),
        "input_health": input_health(conn, w),
    }
    if gallery:
        report["gallery"] = gallery_images(conn, w, gallery)
    return Report.model_validate(report)


FILL_MAX = 5000  # buckets the timeline fills with zero rows at most (beyond: only counted ones)


def _summary_query(w: Conditions, key: sa.ColumnElement[Any]) -> sa.Select[*tuple[Any, ...]]:
    """Counts, latency sum and maximum, and the min/max plugin and recipe of each
    (bucket ``key``, station, verdict) group of the rows ``w`` selects."""
    return (
        sa.select(
            key,
            I.c.station_id,
            I.c.verdict,
            sa.func.count().label("n"),
            sa.func.sum(I.c.latency_ms).label("lat_sum"),
            sa.func.max(I.c.latency_ms).label("lat_max"),
            sa.func.min(I.c.plugin),
            sa.func.max(I.c.plugin),
            sa.func.min(I.c.recipe),
            sa.func.max(I.c.recipe),
        )
        .where(*w.hours, *w.scan)
        .group_by(key, I.c.station_id, I.c.verdict)
    )


def _summary(
    conn: Connection,
    w: Conditions,
    unit: str,
    span: timedelta | None,
    stations: dict[int, StationRow],
) -> dict[str, Any]:
    """One GROUP BY (hour, station, verdict) that streams over the covering index
    ``ix_inspection_hour_cover``: verdict counts, yield per station and recipe, the timeline
    and the latency mean and maximum. Long day-bucketed ranges group by day in SQL instead, so
    the groups stay few. The recipe of a group comes from min/max aggregates (grouping by it
    would sort every row); the rare groups whose station switched recipe within them are split
    by one more query (:func:`_split_mixed`)."""
    by_day_in_sql = unit == "day" and span is not None and span > timedelta(days=62)
    key = ((I.c.inspected_hour // 24) if by_day_in_sql else I.c.inspected_hour).label("k")
    q = _summary_query(w, key)
    verdicts = dict.fromkeys(VERDICTS, 0)
    per_station: dict[StationRecipe, dict[str, int]] = {}
    per_bucket: dict[int, dict[str, int]] = {}
    mixed: set[tuple[int, int, str]] = set()  # (key, station, verdict) groups of two recipes
    lat_sum, lat_max = 0.0, None
    for k, sid, verdict, n, lsum, lmax, p0, p1, r0, r1 in conn.execute(q):
        bkey = k if by_day_in_sql or unit == "hour" else k // 24
        verdicts[verdict] += n
        if (p0, r0) == (p1, r1):
            per_station.setdefault((sid, p0, r0), dict.fromkeys(VERDICTS, 0))[verdict] += n
        else:
            mixed.add((k, sid, verdict))
        per_bucket.setdefault(bkey, dict.fromkeys(VERDICTS, 0))[verdict] += n
        lat_sum += float(lsum or 0.0)
        lat_max = float(lmax) if lat_max is None or float(lmax) > lat_max else lat_max
    for (sid, plugin, recipe), verdict, n in _split_mixed(conn, w, mixed, by_day_in_sql):
        per_station.setdefault((sid, plugin, recipe), dict.fromkeys(VERDICTS, 0))[verdict] += n
    lo, hi = min(per_bucket, default=0), max(per_bucket, default=-1)
    if hi - lo < FILL_MAX:  # a stopped line shows as zero (not across a clock set to 2000)
        for b in range(lo, hi + 1):
            per_bucket.setdefault(b, dict.fromkeys(VERDICTS, 0))
    total = sum(verdicts.values())
    return {
        "total": total,
        "verdicts": verdicts,
        "yield": _yield(verdicts),
        "stations": _station_rows(per_station, stations),
        "timeline": {
            "bucket": unit,
            "rows": [
                {"start": _bucket_iso(b, unit), **_counted(per_bucket[b])}
                for b in sorted(per_bucket)
            ],
        },
        "latency_ms": {
            "count": total,
            "p50": None,
            "p95": None,
            "mean": round(lat_sum / total, 3) if total else None,
            "max": round(lat_max, 3) if lat_max is not None else None,
        },
    }


def _split_mixed(
    conn: Connection, w: Conditions, groups: set[tuple[int, int, str]], by_day: bool
) -> Iterator[tuple[StationRecipe, str, int]]:
    """Counts per recipe of the (hour or day, station, verdict) ``groups`` whose station ran
    more than one recipe in that hour or day: one range of the counts' index from the first
    such hour to the last, for those stations (one query per group walked a station's whole
    history on SQLite: a minute for a week of a million records)."""
    if not groups:
        return
    keys = [k for k, _, _ in groups]
    lo, hi = (min(keys) * 24, max(keys) * 24 + 23) if by_day else (min(keys), max(keys))
    key = (I.c.inspected_hour // 24) if by_day else I.c.inspected_hour
    q = (
        sa.select(key, I.c.station_id, I.c.verdict, I.c.plugin, I.c.recipe, sa.func.count())
        .where(
            *w.scan,
            I.c.inspected_hour.between(lo, hi),
            I.c.station_id.in_(sorted({sid for _, sid, _ in groups})),
        )
        .group_by(key, I.c.station_id, I.c.verdict, I.c.plugin, I.c.recipe)
    )
    for k, sid, verdict, plugin, recipe, n in conn.execute(q):
        if (k, sid, verdict) in groups:
            yield (sid, plugin, recipe), verdict, n


def _yield(counts: dict[str, int]) -> float | None:
    """The share of PASS among ``counts`` (verdict -> count), None when there are none."""
    n = sum(counts.values())
    return round(counts["PASS"] / n, 4) if n else None


def _counted(counts: dict[str, int]) -> dict[str, Any]:
    """A report row's ``total``, count of each verdict and ``yield``."""
    return {"total": sum(counts.values()), **counts, "yield": _yield(counts)}


def _station_rows(
    per_station: dict[StationRecipe, dict[str, int]], stations: dict[int, StationRow]
) -> list[dict[str, Any]]:
    """Yield per station and the recipe it ran, by station name (a station that changed
    recipes has a row for each, each with its own counts: the recipe is the one recorded with
    the inspections, not the station's latest); ``stations``: id -> station row."""
    rows = []
    for (sid, plugin, recipe), counts in per_station.items():
        st = stations.get(sid)
        rows.append(
            {
                "station": st.name if st else str(sid),
                "plugin": plugin,
                "recipe": recipe,
                **_counted(counts),
            }
        )
    return sorted(rows, key=lambda r: (r["station"], r["plugin"], r["recipe"]))


def _pareto(conn: Connection, w: Conditions) -> list[dict[str, Any]]:
    """Regions per class, most frequent first, with the cumulative share."""
    n = sa.func.count().label("n")
    q = sa.select(R.c.class_name, n, sa.func.sum(R.c.area_px).label("area")).where(*w.region)
    rows = sorted(
        conn.execute(q.group_by(R.c.class_name)).all(), key=lambda r: (-r.n, r.class_name)
    )
    total = sum(r.n for r in rows)
    out, cum = [], 0
    for r in rows:
        cum += r.n
        out.append(
            {
                "class": r.class_name,
                "regions": r.n,
                "area_px": int(r.area or 0),
                "share": round(r.n / total, 4),
                "cumulative": round(cum / total, 4),
            }
        )
    return out


def _worst(conn: Connection, w: Conditions, limit: int) -> list[dict[str, Any]]:
    if limit <= 0:
        return []
    q = (
        sa.select(*columns(BRIEF_FIELDS))
        .join(S, S.c.id == I.c.station_id)
        .where(*w.insp, I.c.defect_area_px > 0)
        .order_by(I.c.defect_area_px.desc(), I.c.id)
        .limit(limit)
    )
    return [brief(r) for r in conn.execute(q)]


def _timing(conn: Connection, w: Conditions, column: str) -> dict[str, Any]:
    """Count, p50, p95, mean and maximum of ``column`` (``inspect_ms``, ``queue_ms``) over the
    matching inspections that have it (not those recorded before revision 0006)."""
    c = I.c[column]
    n, total, top = conn.execute(
        sa.select(sa.func.count(c), sa.func.sum(c), sa.func.max(c)).where(*w.scan, c.is_not(None))
    ).one()
    mean = round(float(total) / n, 3) if n else None
    top = round(float(top), 3) if n else None
    return {"count": n, **_percentiles(conn, w, n, column), "mean": mean, "max": top}


def _percentiles(
    conn: Connection, w: Conditions, total: int, column: str = "latency_ms"
) -> dict[str, float | None]:
    """p50 and p95 of ``column`` with linear interpolation (PostgreSQL's percentile_cont).

    SQLite has no percentile function and sorting a million rows takes seconds; instead
    ``ORDER BY latency_ms LIMIT 2 OFFSET k`` walks the covering index
    ``ix_inspection_latency_cover`` up to rank k, in order, with no sort (``inspect_ms`` and
    ``queue_ms`` have theirs; their NULLs, records made before they were, are left out).
    """
    if total == 0:
        return {"p50": None, "p95": None}
    lat = I.c[column]
    have = [] if column == "latency_ms" else [lat.is_not(None)]
    if conn.dialect.name == "postgresql":
        p50, p95 = conn.execute(
            sa.select(
                sa.func.percentile_cont(0.5).within_group(lat),
                sa.func.percentile_cont(0.95).within_group(lat),
            ).where(*w.insp, *have)
        ).one()
        return {"p50": round(float(p50), 3), "p95": round(float(p95), 3)}
    out: dict[str, float | None] = {}
    for name, p in (("p50", 0.5), ("p95", 0.95)):
        pos = p * (total - 1)
        lo = math.floor(pos)
        q = sa.select(lat).where(*w.scan, *have).order_by(lat).limit(2).offset(lo)
        vals = [float(v) for v in conn.execute(q).scalars()]
        hi_val = vals[1] if len(vals) > 1 else vals[0]
        out[name] = round(vals[0] + (hi_val - vals[0]) * (pos - lo), 3)
    return out
