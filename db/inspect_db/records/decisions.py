"""The operators' decisions as records other features read (the report's review figures, the
backtest): the decision in force per reviewed inspection. The review page's own reading and
writing of decisions is :mod:`inspect_review.storage`.

An inspection's decision in force is its latest ``review`` row (highest id), unless that row is
an undo (``model_verdict`` :data:`~inspect_db.models.UNDO`): then it has none, it is not
reviewed. The decision an undo superseded does not come back, and an undo row is never counted
as a decision itself. The review page's queue reads it the same way
(:mod:`inspect_review.storage.queue`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from inspect_db.engine import connect
from inspect_db.models import UNDO
from inspect_db.tables import RV

# the latest row of each inspection, looked up again to see whether it is an undo: an alias, so
# that it never correlates with the ``review`` table the callers join
_LAST = RV.alias("review_last")


def in_force(*where: Any) -> sa.Subquery:
    """The decisions in force (column ``review_id``), one per reviewed inspection among the
    ``review`` rows ``where`` selects (conditions on :data:`~inspect_db.tables.RV`; none: every
    inspection). Join ``RV`` on ``review_id`` for the decision's columns."""
    latest = (
        sa.select(sa.func.max(RV.c.id).label("review_id"))
        .where(*where)
        .group_by(RV.c.inspection_id)
        .subquery("latest")
    )
    return (
        sa.select(latest.c.review_id)
        .join(_LAST, _LAST.c.id == latest.c.review_id)
        .where(_LAST.c.model_verdict != UNDO)
        .subquery("in_force")
    )


def human_verdicts(engine: Engine, inspection_ids: list[int]) -> dict[int, str]:
    """The operators' verdict in force on each of ``inspection_ids`` that is reviewed (what a
    backtest compares the recorded and the candidate verdicts with); an inspection whose
    latest decision was undone has none."""
    if not inspection_ids:
        return {}
    decided = in_force(RV.c.inspection_id.in_(inspection_ids))
    q = sa.select(RV.c.inspection_id, RV.c.verdict).join(decided, decided.c.review_id == RV.c.id)
    with connect(engine) as conn:
        return {int(r.inspection_id): str(r.verdict) for r in conn.execute(q)}
