"""The report's review figures (section ``review`` of
:func:`inspect_db.reports.query.build_report`): how much of the queue operators have worked, and
how often they agree with the model.

Over the inspections the report's filters select; only each inspection's decision in force
counts (its latest ``review`` row; earlier ones are the audit trail). An inspection whose latest
row is an undo is not reviewed (pending), and undo rows are never counted
(:func:`inspect_db.records.decisions.in_force`). Sections:

* ``queue``: per model verdict (REVIEW, FAIL) how many inspections are reviewed and pending;
* ``stations``: per station the reviewed items, the model's FAILs the operator confirmed and
  overturned (to PASS), the REVIEWs resolved to PASS and to FAIL, and ``agreement``: the share
  of reviewed FAILs confirmed (None with no FAIL reviewed);
* ``classes``: per class the model predicted, its reviewed regions: ``confirmed`` (a defect of
  that class), ``reclassed`` (a defect of another class), ``not_defect``, ``unsure``, and
  ``agreement`` = confirmed / (confirmed + reclassed + not_defect);
* ``days``: per day of inspection (UTC) the reviewed items, FAILs overturned, REVIEWs resolved
  to PASS and to FAIL;
* ``corrections``: per model version the inspections, reviewed and corrected ones (verdict
  changed, a region relabelled, a defect drawn) and their shares
  (:mod:`inspect_db.reports.corrections`, where the definition is).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inspect_db.records.decisions import in_force
from inspect_db.reports.corrections import corrections
from inspect_db.reports.filters import Conditions
from inspect_db.tables import RL, RV, I, R, S

QUEUED = ("REVIEW", "FAIL")


def review_figures(conn: Connection, w: Conditions, verdicts: dict[str, int]) -> dict[str, Any]:
    """The review section of the report over the inspections ``w`` selects; ``verdicts``: the
    report's count of each verdict over the same inspections (pending = counted - reviewed,
    so no query walks the inspections that no one reviewed)."""
    return {
        "queue": _queue(conn, w, verdicts),
        "stations": _stations(conn, w),
        "classes": _classes(conn, w),
        "days": _days(conn, w),
        "corrections": corrections(conn, w),
    }


def _queue(conn: Connection, w: Conditions, verdicts: dict[str, int]) -> dict[str, dict[str, int]]:
    q = _outcomes(RV.c.model_verdict).where(*w.insp).group_by(RV.c.model_verdict)
    reviewed = {r.k: int(r.reviewed) for r in conn.execute(q)}
    return {
        v: {"reviewed": reviewed.get(v, 0), "pending": verdicts.get(v, 0) - reviewed.get(v, 0)}
        for v in QUEUED
    }


def _outcomes(key: Any) -> Any:
    """Reviewed items and their outcomes per ``key``, over the decisions in force."""
    decided = in_force()

    def n(model: str, human: str) -> Any:
        hit = sa.and_(RV.c.model_verdict == model, RV.c.verdict == human)
        return sa.func.sum(sa.case((hit, 1), else_=0))

    return (
        sa.select(
            key.label("k"),
            sa.func.count().label("reviewed"),
            n("FAIL", "FAIL").label("fail_confirmed"),
            n("FAIL", "PASS").label("fail_overturned"),
            n("REVIEW", "PASS").label("review_to_pass"),
            n("REVIEW", "FAIL").label("review_to_fail"),
        )
        .select_from(decided)
        .join(RV, RV.c.id == decided.c.review_id)
        .join(I, I.c.id == RV.c.inspection_id)
    )


def _counts(r: Any) -> dict[str, int]:
    return {
        "reviewed": int(r.reviewed),
        "fail_confirmed": int(r.fail_confirmed or 0),
        "fail_overturned": int(r.fail_overturned or 0),
        "review_to_pass": int(r.review_to_pass or 0),
        "review_to_fail": int(r.review_to_fail or 0),
    }


def _agreement(confirmed: int, judged: int) -> float | None:
    return round(confirmed / judged, 4) if judged else None


def _stations(conn: Connection, w: Conditions) -> list[dict[str, Any]]:
    q = _outcomes(S.c.name).join(S, S.c.id == I.c.station_id).where(*w.insp).group_by(S.c.name)
    rows = []
    for r in conn.execute(q):
        c = _counts(r)
        judged = c["fail_confirmed"] + c["fail_overturned"]
        rows.append({"station": r.k, **c, "agreement": _agreement(c["fail_confirmed"], judged)})
    return sorted(rows, key=lambda x: x["station"])


def _days(conn: Connection, w: Conditions) -> list[dict[str, Any]]:
    day = I.c.inspected_hour // 24
    q = _outcomes(day).where(*w.insp).group_by(day)
    rows = []
    for r in conn.execute(q):
        start = datetime(1970, 1, 1) + timedelta(days=int(r.k))
        rows.append({"day": start.date().isoformat(), **_counts(r)})
    return sorted(rows, key=lambda x: x["day"])


def _classes(conn: Connection, w: Conditions) -> list[dict[str, Any]]:
    decided = in_force()
    q = (
        sa.select(
            R.c.class_name,
            RL.c.label,
            (RL.c.class_name == R.c.class_name).label("same"),
            sa.func.count().label("n"),
        )
        .select_from(decided)
        .join(RL, RL.c.review_id == decided.c.review_id)
        .join(R, R.c.id == RL.c.region_id)
        .join(I, I.c.id == R.c.inspection_id)
        .where(*w.insp)
        .group_by(R.c.class_name, RL.c.label, RL.c.class_name == R.c.class_name)
    )
    per: dict[str, dict[str, int]] = {}
    for name, label, same, n in conn.execute(q):
        c = per.setdefault(
            name, {"regions": 0, "confirmed": 0, "reclassed": 0, "not_defect": 0, "unsure": 0}
        )
        c["regions"] += int(n)
        key = ("confirmed" if same else "reclassed") if label == "defect" else label
        c[key] += int(n)
    return [
        {
            "class": name,
            **c,
            "agreement": _agreement(
                c["confirmed"], c["confirmed"] + c["reclassed"] + c["not_defect"]
            ),
        }
        for name, c in sorted(per.items())
    ]
