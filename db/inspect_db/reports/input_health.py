"""The input health of the report's inspections (section ``input_health`` of
:func:`inspect_db.reports.query.build_report`; issue 25, drift over time): per station and
day (UTC, ``inspected_hour // 24``) how many images were measured (``health_flag`` recorded),
how many broke a quality limit (``quality``) or were unlike the training images
(``unfamiliar``), their shares, the familiarity distribution, and the mean focus and mean gray
level against the station's first day in the report, so that a drifting camera or a changed
product shows as a trend.

Familiarity is the share of the training hold-out images farther out than the image (0..1):
images like the training ones spread evenly over 0..1, so the **training reference** is a
median of 0.5 and a 10th percentile of 0.1, and every tenth holds a tenth of them. The
distribution is therefore counted in ten fixed bins (0-0.1, ..., 0.9-1.0) by ``SUM(CASE ...)``
in the same GROUP BY: one portable aggregate query on SQLite (which has no percentile function)
and PostgreSQL, a fixed size per row however many images a day holds, and bins that read
directly against the reference. The median and 10th percentile are interpolated within their
bin (at most 0.05 off, finer than the flag's threshold needs).

Records made before revision 0008, or without health measured, are left out; the section is
None when no inspection the filters select has a ``health_flag``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inspect_db.reports.filters import Conditions
from inspect_db.reports.model import Familiarity, HealthDay, InputHealth
from inspect_db.tables import I, S

BINS = 10  # familiarity bins of 0.1 over 0..1
REFERENCE_MEDIAN = 0.5  # familiarity of images like the training ones: even over 0..1
REFERENCE_P10 = 0.1
_EPOCH = date(1970, 1, 1)


def _bin_sums(col: sa.ColumnElement[Any]) -> list[sa.ColumnElement[Any]]:
    """Per familiarity bin, the count of rows in it (values below 0 fall in the first bin,
    1.0 and above in the last)."""
    sums: list[sa.ColumnElement[Any]] = []
    for b in range(BINS):
        lo, hi = b / BINS, (b + 1) / BINS
        conds = []
        if b > 0:
            conds.append(col >= lo)
        if b < BINS - 1:
            conds.append(col < hi)
        sums.append(sa.func.sum(sa.case((sa.and_(col.is_not(None), *conds), 1), else_=0)))
    return sums


def _query(w: Conditions) -> sa.Select[Any]:
    day = (I.c.inspected_hour // 24).label("day")
    flag = I.c.health_flag
    return (
        sa.select(
            S.c.name,
            day,
            sa.func.count(),
            sa.func.sum(sa.case((flag == "quality", 1), else_=0)),
            sa.func.sum(sa.case((flag == "unfamiliar", 1), else_=0)),
            sa.func.count(I.c.familiarity),
            sa.func.avg(I.c.focus),
            sa.func.avg(I.c.mean_level),
            *_bin_sums(I.c.familiarity),
        )
        .join(S, S.c.id == I.c.station_id)
        .where(*w.insp, flag.is_not(None))
        .group_by(S.c.name, day)
    )


def input_health(conn: Connection, w: Conditions) -> InputHealth | None:
    """The section over the inspections ``w`` selects, by station then day; None when none of
    them has its health recorded."""
    rows = sorted(conn.execute(_query(w)).all(), key=lambda r: (r[0], r[1]))
    if not rows:
        return None
    first: dict[str, tuple[float | None, float | None]] = {}
    days = []
    for name, day, n, quality, unfamiliar, scored, focus, level, *bins in rows:
        fm = None if focus is None else float(focus)
        lv = None if level is None else float(level)
        f0, l0 = first.get(name, (None, None))
        first[name] = (f0 if f0 is not None else fm, l0 if l0 is not None else lv)
        f0, l0 = first[name]
        counts = [int(b or 0) for b in bins]
        days.append(
            HealthDay(
                station=name,
                day=(_EPOCH + timedelta(days=int(day))).isoformat(),
                measured=int(n),
                quality=int(quality or 0),
                unfamiliar=int(unfamiliar or 0),
                quality_share=_share(int(quality or 0), int(n)),
                unfamiliar_share=_share(int(unfamiliar or 0), int(n)),
                familiarity=Familiarity(
                    count=int(scored),
                    median=quantile(counts, 0.5),
                    p10=quantile(counts, 0.1),
                    bins=counts,
                ),
                focus_mean=_round(fm),
                focus_change=None if fm is None or not f0 else round(fm / f0 - 1, 4),
                level_mean=_round(lv),
                level_change=None if lv is None or l0 is None else round(lv - l0, 2),
            )
        )
    return InputHealth(reference_median=REFERENCE_MEDIAN, reference_p10=REFERENCE_P10, days=days)


def quantile(bins: list[int], q: float) -> float | None:
    """The ``q`` quantile of values counted in ``bins`` (even bins over 0..1), interpolated
    linearly within its bin as if its values were spread evenly; None when nothing is
    counted."""
    total = sum(bins)
    if total == 0:
        return None
    target, below = q * total, 0
    for b, n in enumerate(bins):
        if n and below + n >= target:
            return round((b + (target - below) / n) / len(bins), 4)
        below += n
    return 1.0


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)
