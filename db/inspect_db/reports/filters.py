"""Which inspections a report covers: the command line's filters, parsed and checked
(:class:`ReportFilters`), and the SQL conditions they become (:func:`conditions`).

Times are naive UTC in the database and ISO 8601 with ``Z`` in the report (:func:`iso`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inspect_core.types import VERDICTS
from inspect_db.errors import BadFilter, UnknownStation
from inspect_db.models import utcnow
from inspect_db.tables import I, R, S

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
    now = now or utcnow()
    if not (text or "").strip():
        raise BadFilter(
            f"{option} {text!r}: empty; give a span ago like 30m, 24h, 7d, 2w "
            f"or an ISO date/time like 2025-11-24, or leave {option} out"
        )
    m = _SPAN.match(text)
    if m and m.group(2) == "M":  # "1M" reads as a month as often as a minute
        raise BadFilter(
            f"{option} {text!r}: minutes or months? write {m.group(1)}min (minutes) or "
            f"{m.group(1)}d / {m.group(1)}w (days, weeks)"
        )
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
class Conditions:
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


def _check_known(conn: Connection, column: str, value: str) -> None:
    """BadFilter naming the recorded values when no inspection has ``column`` = ``value`` (a
    typo, or another case, would otherwise report an empty, healthy-looking line)."""
    col = I.c[column]
    if conn.execute(sa.select(col).where(col == value).limit(1)).first() is not None:
        return
    known = conn.execute(sa.select(col).distinct().order_by(col).limit(50)).scalars().all()
    raise BadFilter(
        f"--{column} {value!r}: no inspection of that {column} in the database; recorded: "
        f"{', '.join(k for k in known if k) or '(none recorded yet)'}"
    )


def conditions(conn: Connection, f: ReportFilters) -> Conditions:
    """The SQL conditions of ``f`` (a station name is looked up: :class:`UnknownStation` when
    the database has none of that name)."""
    w = Conditions()
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
            _check_known(conn, name, value)
            add(name, lambda c, v=value: c == v)
            w.region.append(R.c[name] == value)
    if f.verdicts:
        add("verdict", lambda c: c.in_(f.verdicts))
        w.region.append(R.c.verdict.in_(f.verdicts))
    return w
