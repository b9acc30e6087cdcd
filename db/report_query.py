"""The report's data: a few aggregate SQL queries over the filtered inspections.

:func:`build_report` returns one plain dict (what ``inspect report --json`` prints) with the
sections ``verdicts``, ``stations`` (yield per station), ``pareto`` (defects by class),
``worst`` (largest defect area), ``latency_ms`` (p50/p95), ``timeline`` (counts per hour or day)
and, on request, ``gallery`` (recent FAIL/REVIEW images with overlays). Every section is one
GROUP BY / ORDER BY ... LIMIT query served by the indexes in :mod:`db.models`; Python only
loops over groups, never over inspections. :func:`inspection_rows` / :func:`region_rows`
stream the rows for CSV export.

Times are naive UTC in the database and ISO 8601 with ``Z`` in the report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from inspect_db.engine import connect, safe_url
from inspect_db.errors import BadFilter, UnknownStation
from inspect_db.models import VERDICTS, InspectionRecord, Model, RegionRecord, Station

I = InspectionRecord.__table__  # noqa: E741
R = RegionRecord.__table__
S = Station.__table__
M = Model.__table__

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d|day|days|w|wk|weeks?)\s*$", re.I)
_UNIT = {
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "hr": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "wk": 604800,
    "week": 604800,
    "weeks": 604800,
}


def parse_when(text: str, now: datetime | None = None, *, option: str = "--since") -> datetime:
    """``24h``, ``30m``, ``7d``, ``2w`` (that long ago) or an ISO date/time -> naive UTC.

    ISO times without an offset are taken as UTC. :class:`BadFilter` for anything else,
    including a span that reaches before the year 1 and a time that leaves years 1..9999 in UTC.
    """
    now = now or datetime.now(UTC).replace(tzinfo=None)
    if not (text or "").strip():
        raise BadFilter(
            f"{option} {text!r}: empty; give a span ago like 30m, 24h, 7d, 2w "
            f"or an ISO date/time like 2025-11-24, or leave {option} out"
        )
    m = _SPAN.match(text)
    if m:
        try:
            return now - timedelta(seconds=float(m.group(1)) * _UNIT[m.group(2).lower()])
        except (OverflowError, ValueError):
            raise BadFilter(
                f"{option} {text!r}: too far back (before the year 1); give a "
                "shorter span, or leave the option out for everything"
            ) from None
    try:
        t = datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise BadFilter(
            f"{option} {text!r}: not a time; give a span ago like 30m, 24h, 7d, "
            "2w, or an ISO date/time like 2025-11-24 or 2025-11-24T08:00:00+01:00"
        ) from None
    if t.tzinfo is not None:
        try:
            t = t.astimezone(UTC).replace(tzinfo=None)
        except (OverflowError, ValueError):
            raise BadFilter(
                f"{option} {text!r}: out of range in UTC (years 1 to 9999); give "
                "a time inside that range"
            ) from None
    return t


def iso(t: datetime | None) -> str | None:
    return None if t is None else t.replace(microsecond=0).isoformat() + "Z"


@dataclass
class ReportFilters:
    """Which inspections a report covers (None = no restriction)."""

    since: datetime | None = None
    until: datetime | None = None
    station: str | None = None
    plugin: str | None = None
    recipe: str | None = None
    verdicts: list[str] | None = None

    @classmethod
    def parse(
        cls,
        since: str | None = None,
        until: str | None = None,
        station: str | None = None,
        plugin: str | None = None,
        recipe: str | None = None,
        verdict: str | None = None,
        now: datetime | None = None,
    ) -> ReportFilters:
        """Filters from command-line strings; :class:`BadFilter` says what is wrong."""
        for option, value in (
            ("--station", station),
            ("--plugin", plugin),
            ("--recipe", recipe),
            ("--verdict", verdict),
        ):
            if value is not None and not value.strip():
                raise BadFilter(
                    f"{option} {value!r}: empty; give a value, or leave {option} out to include all"
                )
        s = parse_when(since, now, option="--since") if since is not None else None
        u = parse_when(until, now, option="--until") if until is not None else None
        if s and u and s >= u:
            raise BadFilter(
                f"--since {since} ({iso(s)}) is not before --until {until} "
                f"({iso(u)}); swap them or widen the range"
            )
        verdicts = None
        if verdict:
            verdicts = [v.strip().upper() for v in verdict.split(",") if v.strip()]
            bad = [v for v in verdicts if v not in VERDICTS]
            if bad or not verdicts:
                what = f"unknown verdict(s) {', '.join(bad)}" if bad else "no verdict in it"
                raise BadFilter(
                    f"--verdict {verdict!r}: {what}; use one or "
                    f"more of {', '.join(VERDICTS)} separated by commas"
                )
        return cls(s, u, station or None, plugin or None, recipe or None, verdicts)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["since"], d["until"] = iso(self.since), iso(self.until)
        return d


@dataclass
class _Where:
    """SQL conditions of the filters.

    ``insp``: on the inspection table, for the planner to use any index. ``scan``: the same,
    but on SQLite written ``+column`` so that no index serves them: a query over ``scan``
    reads the one covering index that gives its GROUP BY / ORDER BY order (the documented
    way to steer SQLite's planner). ``hours``: the range of ``inspected_hour``, the leading
    column of the counts' index. ``region``: on the region table's copies of the inspection's
    columns (Pareto), all in ``ix_region_pareto``.
    """

    insp: list[Any] = field(default_factory=list)
    scan: list[Any] = field(default_factory=list)
    hours: list[Any] = field(default_factory=list)
    region: list[Any] = field(default_factory=list)


def _hour(t: datetime) -> int:
    return int(t.replace(tzinfo=UTC).timestamp() // 3600)


def _where(conn: Connection, f: ReportFilters) -> _Where:
    w = _Where()
    sqlite = conn.dialect.name == "sqlite"

    def unindexed(name: str) -> Any:
        col = I.c[name]
        return sa.literal_column(f"+inspection.{name}", col.type) if sqlite else col

    def add(name: str, cond: Any) -> None:
        w.insp.append(cond(I.c[name]))
        w.scan.append(cond(unindexed(name)))

    if f.since is not None:
        add("inspected_at", lambda c: c >= f.since)
        w.hours.append(I.c.inspected_hour >= _hour(f.since))
        w.region.append(R.c.inspected_at >= f.since)
    if f.until is not None:
        add("inspected_at", lambda c: c < f.until)
        w.hours.append(I.c.inspected_hour <= _hour(f.until))
        w.region.append(R.c.inspected_at < f.until)
    if f.station is not None:
        sid = conn.execute(sa.select(S.c.id).where(S.c.name == f.station)).scalar_one_or_none()
        if sid is None:
            names = conn.execute(sa.select(S.c.name).order_by(S.c.name).limit(50)).scalars().all()
            raise UnknownStation(
                f"--station {f.station!r}: no such station in the database; "
                f"known stations: {', '.join(names) or '(none recorded yet)'}"
            )
        add("station_id", lambda c: c == sid)
        w.region.append(R.c.station_id == sid)
    for name, value in (("plugin", f.plugin), ("recipe", f.recipe)):
        if value is not None:
            add(name, lambda c, v=value: c == v)
            w.region.append(R.c[name] == value)
    if f.verdicts:
        add("verdict", lambda c: c.in_(f.verdicts))
        w.region.append(R.c.verdict.in_(f.verdicts))
    return w


def _bucket_iso(hour: int, unit: str) -> str:
    """The start of an hour (or of the day, when hour is a day number) in ISO 8601."""
    t = datetime(1970, 1, 1) + timedelta(hours=hour * (24 if unit == "day" else 1))
    return t.isoformat() + "Z"


def _span(conn: Connection, f: ReportFilters, w: _Where) -> timedelta | None:
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
) -> dict[str, Any]:
    """The report over the inspections that match ``filters`` (see the module docstring).

    ``worst``: how many images with the largest defect area; ``bucket``: ``hour``, ``day`` or
    ``auto`` (hours for up to 3 days, else days); ``gallery``: how many recent FAIL/REVIEW
    inspections with an overlay to list (0 = none). Given a connection, the caller has
    checked the schema (:func:`db.migrate.ensure_schema`).
    """
    if isinstance(db, Engine):
        from inspect_db.migrate import ensure_schema

        ensure_schema(db)  # an empty database is migrated, an outdated one refused
        with connect(db) as conn:
            return build_report(conn, filters, worst=worst, bucket=bucket, gallery=gallery)
    if bucket not in ("auto", "hour", "day"):
        raise BadFilter(f"bucket {bucket!r}: use hour, day or auto")
    conn, f = db, filters or ReportFilters()
    w = _where(conn, f)
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
        "generated_at": iso(datetime.now(UTC).replace(tzinfo=None)),
        "filters": f.to_dict(),
        "total": total,
        **summary,
        "pareto": _pareto(conn, w),
        "worst": _worst(conn, w, worst),
        "latency_ms": latency,
    }
    if gallery:
        report["gallery"] = _gallery(conn, w, gallery)
    return report


def _summary(
    conn: Connection, w: _Where, unit: str, span: timedelta | None, stations: dict
) -> dict[str, Any]:
    """One GROUP BY (hour, station, verdict) that streams over the covering index
    ``ix_inspection_hour_cover``: verdict counts, yield per station, the timeline and the
    latency mean and maximum. Long day-bucketed ranges group by day in SQL instead, so the
    groups stay few."""
    by_day_in_sql = unit == "day" and span is not None and span > timedelta(days=62)
    key = (I.c.inspected_hour // 24) if by_day_in_sql else I.c.inspected_hour
    key = key.label("k")
    q = (
        sa.select(
            key,
            I.c.station_id,
            I.c.verdict,
            sa.func.count().label("n"),
            sa.func.sum(I.c.latency_ms).label("lat_sum"),
            sa.func.max(I.c.latency_ms).label("lat_max"),
        )
        .where(*w.hours, *w.scan)
        .group_by(key, I.c.station_id, I.c.verdict)
    )
    verdicts = dict.fromkeys(VERDICTS, 0)
    per_station: dict[int, dict[str, int]] = {}
    per_bucket: dict[int, dict[str, int]] = {}
    lat_sum, lat_max = 0.0, None
    for k, sid, verdict, n, lsum, lmax in conn.execute(q):
        bkey = k if by_day_in_sql or unit == "hour" else k // 24
        verdicts[verdict] += n
        per_station.setdefault(sid, dict.fromkeys(VERDICTS, 0))[verdict] += n
        per_bucket.setdefault(bkey, dict.fromkeys(VERDICTS, 0))[verdict] += n
        lat_sum += float(lsum or 0.0)
        lat_max = float(lmax) if lat_max is None or float(lmax) > lat_max else lat_max
    total = sum(verdicts.values())
    rows = []
    for sid, counts in per_station.items():
        st = stations.get(sid)
        n = sum(counts.values())
        rows.append(
            {
                "station": st.name if st else str(sid),
                "plugin": st.plugin if st else "",
                "recipe": st.recipe if st else "",
                "total": n,
                **counts,
                "yield": round(counts["PASS"] / n, 4) if n else None,
            }
        )
    rows.sort(key=lambda r: r["station"])
    timeline = []
    for bkey in sorted(per_bucket):
        counts = per_bucket[bkey]
        n = sum(counts.values())
        timeline.append(
            {
                "start": _bucket_iso(bkey, unit),
                "total": n,
                **counts,
                "yield": round(counts["PASS"] / n, 4) if n else None,
            }
        )
    latency = {
        "count": total,
        "p50": None,
        "p95": None,
        "mean": round(lat_sum / total, 3) if total else None,
        "max": round(lat_max, 3) if lat_max is not None else None,
    }
    return {
        "total": total,
        "verdicts": verdicts,
        "yield": round(verdicts["PASS"] / total, 4) if total else None,
        "stations": rows,
        "timeline": {"bucket": unit, "rows": timeline},
        "latency_ms": latency,
    }


def _pareto(conn: Connection, w: _Where) -> list[dict[str, Any]]:
    """Regions per class, most frequent first, with the cumulative share."""
    n = sa.func.count().label("n")
    q = sa.select(R.c.class_name, n, sa.func.sum(R.c.area_px).label("area")).where(*w.region)
    rows = conn.execute(q.group_by(R.c.class_name)).all()
    rows.sort(key=lambda r: (-r.n, r.class_name))
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


def _inspection_cols() -> list[Any]:
    return [
        I.c.id,
        S.c.name.label("station"),
        I.c.plugin,
        I.c.recipe,
        I.c.source,
        I.c.image_sha256,
        I.c.verdict,
        I.c.n_regions,
        I.c.defect_area_px,
        I.c.inspected_at,
        I.c.latency_ms,
        I.c.overlay_path,
        I.c.part_id,
        I.c.lot,
    ]


def _brief(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d["inspected_at"] = iso(d["inspected_at"])
    return d


def _worst(conn: Connection, w: _Where, limit: int) -> list[dict[str, Any]]:
    if limit <= 0:
        return []
    q = (
        sa.select(*_inspection_cols())
        .join(S, S.c.id == I.c.station_id)
        .where(*w.insp, I.c.defect_area_px > 0)
        .order_by(I.c.defect_area_px.desc(), I.c.id)
        .limit(limit)
    )
    return [_brief(r) for r in conn.execute(q)]


def _gallery(conn: Connection, w: _Where, limit: int) -> list[dict[str, Any]]:
    q = (
        sa.select(*_inspection_cols())
        .join(S, S.c.id == I.c.station_id)
        .where(*w.insp, I.c.verdict.in_(("FAIL", "REVIEW")), I.c.overlay_path.is_not(None))
        .order_by(I.c.inspected_at.desc(), I.c.id.desc())
        .limit(limit)
    )
    return [_brief(r) for r in conn.execute(q)]


def _percentiles(conn: Connection, w: _Where, total: int) -> dict[str, float | None]:
    """p50 and p95 of the latency with linear interpolation (PostgreSQL's percentile_cont).

    SQLite has no percentile function and sorting a million rows takes seconds; instead
    ``ORDER BY latency_ms LIMIT 2 OFFSET k`` walks the covering index
    ``ix_inspection_latency_cover`` up to rank k, in order, with no sort.
    """
    if total == 0:
        return {"p50": None, "p95": None}
    lat = I.c.latency_ms
    if conn.dialect.name == "postgresql":
        p50, p95 = conn.execute(
            sa.select(
                sa.func.percentile_cont(0.5).within_group(lat),
                sa.func.percentile_cont(0.95).within_group(lat),
            ).where(*w.insp)
        ).one()
        return {"p50": round(float(p50), 3), "p95": round(float(p95), 3)}
    out: dict[str, float | None] = {}
    for name, p in (("p50", 0.5), ("p95", 0.95)):
        pos = p * (total - 1)
        lo = math.floor(pos)
        q = sa.select(lat).where(*w.scan).order_by(lat).limit(2).offset(lo)
        vals = [float(v) for v in conn.execute(q).scalars()]
        hi_val = vals[1] if len(vals) > 1 else vals[0]
        out[name] = round(vals[0] + (hi_val - vals[0]) * (pos - lo), 3)
    return out


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
    w = _where(conn, f)
    q = (
        sa.select(
            I.c.id,
            S.c.name.label("station"),
            I.c.plugin,
            I.c.recipe,
            I.c.source,
            I.c.image_sha256,
            I.c.width,
            I.c.height,
            I.c.captured_at,
            I.c.inspected_at,
            I.c.latency_ms,
            I.c.verdict,
            I.c.fired,
            I.c.n_regions,
            I.c.defect_area_px,
            I.c.part_id,
            I.c.lot,
            I.c.capture_id,
            I.c.error,
            I.c.overlay_path,
            M.c.sha256.label("model_sha256"),
        )
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
    w = _where(conn, f)
    q = (
        sa.select(
            R.c.inspection_id,
            S.c.name.label("station"),
            I.c.source,
            I.c.image_sha256,
            I.c.verdict,
            I.c.inspected_at,
            R.c.class_id,
            R.c.class_name,
            R.c.bbox_x,
            R.c.bbox_y,
            R.c.bbox_w,
            R.c.bbox_h,
            R.c.area_px,
            R.c.area_mm2,
            R.c.centroid_x,
            R.c.centroid_y,
            R.c.max_prob,
            R.c.mean_prob,
        )
        .join(I, I.c.id == R.c.inspection_id)
        .join(S, S.c.id == I.c.station_id)
        .where(*w.insp)
        .order_by(I.c.inspected_at, R.c.inspection_id, R.c.id)
    )
    for row in conn.execute(q.execution_options(yield_per=2000)):
        d = dict(row._mapping)
        d["inspected_at"] = iso(d["inspected_at"])
        yield d
