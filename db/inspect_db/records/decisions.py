"""The operators' decisions as records other features read (the backtest): the latest verdict
per reviewed inspection. The review page's own reading and writing of decisions is
:mod:`inspect_review.storage`."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from inspect_db.engine import connect
from inspect_db.tables import RV


def human_verdicts(engine: Engine, inspection_ids: list[int]) -> dict[int, str]:
    """The operators' latest verdict on each of ``inspection_ids`` that was reviewed (what a
    backtest compares the recorded and the candidate verdicts with)."""
    if not inspection_ids:
        return {}
    latest = (
        sa.select(RV.c.inspection_id, sa.func.max(RV.c.id).label("id"))
        .where(RV.c.inspection_id.in_(inspection_ids))
        .group_by(RV.c.inspection_id)
        .subquery()
    )
    q = sa.select(RV.c.inspection_id, RV.c.verdict).join(latest, latest.c.id == RV.c.id)
    with connect(engine) as conn:
        return {int(r.inspection_id): str(r.verdict) for r in conn.execute(q)}
