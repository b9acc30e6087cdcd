"""Undoing a decision, and what the page confirms after one was saved.

An undo is a new ``review`` row (the table is append-only: no row is ever deleted or edited):
``model_verdict`` :data:`~inspect_review.storage.types.UNDO`, ``supersedes_id`` the decision it
undoes, ``verdict`` the undone one's (the column takes PASS or FAIL only), no region label, no
drawn mark. While it is the item's latest row the item is pending again (the queue lists it);
the next decision supersedes the undo. Only the operator who took a decision undoes it, and
only while it is the item's latest row.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from inspect_db.engine import connect
from inspect_db.errors import DecisionConflict, ReviewError, UnknownItem
from inspect_db.models import utcnow
from inspect_db.reports.filters import iso
from inspect_db.tables import RV, I, U
from inspect_review.storage.types import UNDO, SavedView


def record_undo(engine: Engine, inspection_id: int, review_id: int, user_id: int) -> int:
    """Undo decision ``review_id`` on inspection ``inspection_id`` for user ``user_id``;
    returns the undo's ``review`` id. :class:`UnknownItem` when there is no such decision on
    that item, :class:`ReviewError` when it is an undo itself or another operator's,
    :class:`DecisionConflict` when a later row follows it. Nothing is written in those cases."""
    with connect(engine, write=True) as conn:
        insp = conn.execute(
            sa.select(I.c.id, I.c.station_id, I.c.inspected_at)
            .where(I.c.id == inspection_id)
            .with_for_update()  # PostgreSQL: a decision and an undo on one item queue here
        ).first()
        undone = conn.execute(
            sa.select(RV.c.id, RV.c.user_id, RV.c.verdict, RV.c.model_verdict).where(
                RV.c.id == review_id, RV.c.inspection_id == inspection_id
            )
        ).first()
        if insp is None or undone is None:
            raise UnknownItem(
                f"decision {review_id} on inspection {inspection_id} is not in the database: "
                "nothing was undone; open the item to see its decisions"
            )
        _check_undoable(
            conn, undone.id, undone.user_id, undone.model_verdict, inspection_id, user_id
        )
        rid = conn.execute(
            sa.insert(RV)
            .values(
                inspection_id=inspection_id,
                user_id=user_id,
                decided_at=utcnow(),
                verdict=undone.verdict,
                note=f"undoes decision {review_id}",
                supersedes_id=review_id,
                station_id=insp.station_id,
                inspected_at=insp.inspected_at,
                model_verdict=UNDO,
            )
            .returning(RV.c.id)
        ).scalar_one()
    return int(rid)


def _check_undoable(
    conn: Connection, undone_id: int, owner_id: int, what: str, inspection_id: int, user_id: int
) -> None:
    """:class:`ReviewError` or :class:`DecisionConflict` unless ``user_id`` may undo row
    ``undone_id`` (``owner_id``'s, ``what``: its model_verdict) of ``inspection_id``."""
    if what == UNDO:
        raise ReviewError(
            f"row {undone_id} of inspection {inspection_id} is an undo itself: nothing was "
            "changed; decide the item again instead"
        )
    if owner_id != user_id:
        who = conn.execute(sa.select(U.c.name).where(U.c.id == owner_id)).scalar()
        raise ReviewError(
            f"decision {undone_id} on inspection {inspection_id} is {who}'s: only they can "
            "undo it; nothing was changed. Decide the item again if it must change"
        )
    later = conn.execute(
        sa.select(RV.c.model_verdict, RV.c.decided_at, U.c.name)
        .join(U, U.c.id == RV.c.user_id)
        .where(RV.c.inspection_id == inspection_id, RV.c.id > undone_id)
        .order_by(RV.c.id.desc())
        .limit(1)
    ).first()
    if later is not None:
        what = "undid it" if later.model_verdict == UNDO else "decided the item again"
        raise DecisionConflict(
            f"decision {undone_id} on inspection {inspection_id} can no longer be undone: "
            f"{later.name} {what} at {iso(later.decided_at)}; nothing was changed: open the "
            "item to see where it stands"
        )


def saved_decision(conn: Connection, review_id: int, user_id: int) -> SavedView | None:
    """Decision ``review_id`` as the page confirms it to ``user_id`` (None when it is not a
    decision of theirs: the page then confirms nothing)."""
    row = conn.execute(
        sa.select(RV.c.id, RV.c.inspection_id, RV.c.verdict, RV.c.model_verdict, I.c.source)
        .join(I, I.c.id == RV.c.inspection_id)
        .where(RV.c.id == review_id, RV.c.user_id == user_id)
    ).first()
    if row is None or row.model_verdict == UNDO:
        return None
    after = conn.execute(
        sa.select(RV.c.id, RV.c.model_verdict)
        .where(RV.c.inspection_id == row.inspection_id, RV.c.id > row.id)
        .order_by(RV.c.id)
        .limit(1)
    ).first()
    return SavedView(
        row.id,
        row.inspection_id,
        row.verdict,
        image_name(row.source),
        undoable=after is None,
        undone=after is not None and after.model_verdict == UNDO,
    )


def image_name(source: str) -> str:
    """A recorded path's file name (the page shows the full path on hover)."""
    return source.replace("\\", "/").rsplit("/", 1)[-1] or source
