"""Writing for operator review: decisions (append-only) and the users who take them.

:func:`record_decision` adds one ``review`` row, one ``review_region`` row per region of the
inspection and one ``review_mark`` row per region the operator drew, in one write transaction,
after checking that the labels name exactly the inspection's regions, that the marks fit the
image (:func:`inspect_review.storage.marks.check_marks`) and that nobody decided the item since
the operator loaded it. It never
edits the inspection or an earlier decision: a new decision names the one it supersedes.
Passwords arrive hashed (the review package hashes them with argon2); this module stores and
returns the hash, nothing else.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from inspect_db.engine import connect
from inspect_db.errors import DecisionConflict, ReviewError, UnknownItem
from inspect_db.models import utcnow
from inspect_db.reports.filters import iso
from inspect_db.tables import RL, RV, I, R, U
from inspect_review.storage.marks import check_marks, write_marks
from inspect_review.storage.types import DecisionIn, UserView, check_role

NOTE_MAX = 2000  # characters of a decision's note
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def record_decision(engine: Engine, d: DecisionIn) -> int:
    """Record decision ``d``; returns the new ``review`` id. :class:`UnknownItem` for an
    inspection that is not there, :class:`ReviewError` for labels that do not name exactly its
    regions or an item that cannot be judged, :class:`DecisionConflict` when a decision was
    recorded since the operator loaded the item. Nothing is written in any of those cases."""
    if len(d.note) > NOTE_MAX:
        raise ReviewError(f"the note has {len(d.note)} characters; keep it under {NOTE_MAX}")
    with connect(engine, write=True) as conn:
        insp = conn.execute(
            sa.select(I.c.id, I.c.verdict, I.c.station_id, I.c.inspected_at, I.c.width, I.c.height)
            .where(I.c.id == d.inspection_id)
            .with_for_update()  # PostgreSQL: two decisions on one item queue here
        ).first()
        if insp is None:
            raise UnknownItem(f"inspection {d.inspection_id} is not in the database")
        if insp.verdict == "ERROR":
            raise ReviewError(
                f"inspection {d.inspection_id} could not be inspected (ERROR): there is no "
                "verdict or region to judge; fix the file and let the station inspect it again"
            )
        _check_conflict(conn, d)
        regions = set(
            conn.execute(sa.select(R.c.id).where(R.c.inspection_id == d.inspection_id)).scalars()
        )
        _check_labels(d, regions)
        check_marks(d.marks, insp.width, insp.height, regions, d.inspection_id)
        _check_user(conn, d.user_id)
        latest = _latest_id(conn, d.inspection_id)
        rid = conn.execute(
            sa.insert(RV)
            .values(
                inspection_id=d.inspection_id,
                user_id=d.user_id,
                decided_at=utcnow(),
                verdict=d.verdict,
                note=d.note.replace("\x00", ""),
                supersedes_id=latest,
                station_id=insp.station_id,
                inspected_at=insp.inspected_at,
                model_verdict=insp.verdict,
            )
            .returning(RV.c.id)
        ).scalar_one()
        if d.labels:
            conn.execute(
                sa.insert(RL),
                [
                    dict(
                        review_id=rid,
                        region_id=lab.region_id,
                        label=lab.label,
                        class_id=lab.class_id,
                        class_name=lab.class_name,
                    )
                    for lab in d.labels
                ],
            )
        write_marks(conn, rid, d.marks)
    return int(rid)


def _latest_id(conn: Connection, inspection_id: int) -> int | None:
    q = sa.select(sa.func.max(RV.c.id)).where(RV.c.inspection_id == inspection_id)
    v = conn.execute(q).scalar_one_or_none()
    return None if v is None else int(v)


def _check_conflict(conn: Connection, d: DecisionIn) -> None:
    latest = _latest_id(conn, d.inspection_id)
    if latest == d.seen_review_id:
        return
    row = conn.execute(
        sa.select(RV.c.verdict, RV.c.decided_at, U.c.name)
        .join(U, U.c.id == RV.c.user_id)
        .where(RV.c.id == latest)
    ).first()
    who = f"{row.name} decided {row.verdict} at {iso(row.decided_at)}" if row else "it changed"
    raise DecisionConflict(
        f"inspection {d.inspection_id} was decided after you loaded it ({who}); nothing was "
        "recorded: reload the item to see that decision, and decide again if it must change"
    )


def _check_labels(d: DecisionIn, regions: set[int]) -> None:
    given = [lab.region_id for lab in d.labels]
    twice = sorted({r for r in given if given.count(r) > 1})
    unknown = sorted(set(given) - regions)
    missing = sorted(regions - set(given))
    problems = []
    if twice:
        problems.append(f"regions {twice} are labelled twice")
    if unknown:
        problems.append(f"regions {unknown} are not regions of inspection {d.inspection_id}")
    if missing:
        problems.append(f"regions {missing} have no label")
    if problems:
        raise ReviewError(
            "; ".join(problems) + ": a decision labels every region of its item once "
            "(reload the item and decide again)"
        )


def _check_user(conn: Connection, user_id: int) -> None:
    row = conn.execute(sa.select(U.c.disabled_at).where(U.c.id == user_id)).first()
    if row is None or row.disabled_at is not None:
        raise ReviewError(f"user {user_id} does not exist or is disabled: log in again")


# -- users -------------------------------------------------------------------------------


def _user(row: sa.Row[Any]) -> UserView:
    return UserView(row.id, row.name, row.role, row.created_at, row.disabled_at, row.password_hash)


def check_user_name(name: str) -> str:
    if not USER_NAME.match(name or ""):
        raise ReviewError(
            f"user name {name!r}: use 1 to 64 letters, digits and . _ @ - (starting with a "
            "letter or digit)"
        )
    return name


def add_user(engine: Engine, name: str, role: str, password_hash: str) -> UserView:
    """A new user; :class:`ReviewError` when the name is taken (or not a usable name)."""
    check_user_name(name)
    check_role(role)
    try:
        with connect(engine, write=True) as conn:
            conn.execute(
                sa.insert(U).values(
                    name=name, role=role, password_hash=password_hash, created_at=utcnow()
                )
            )
    except IntegrityError:
        raise ReviewError(
            f"user {name!r} exists already; give another name, or change its password with "
            f"`inspect review user passwd {name}`"
        ) from None
    return get_user(engine, name)


def get_user(engine: Engine, name: str) -> UserView:
    """The user called ``name``; :class:`UnknownItem` when there is none."""
    with connect(engine) as conn:
        row = conn.execute(sa.select(U).where(U.c.name == name)).first()
    if row is None:
        raise UnknownItem(
            f"no review user {name!r}; add one with `inspect review user add {name} --role "
            "operator`"
        )
    return _user(row)


def user_by_id(conn: Connection, user_id: int) -> UserView | None:
    row = conn.execute(sa.select(U).where(U.c.id == user_id)).first()
    return None if row is None else _user(row)


def list_users(engine: Engine) -> list[UserView]:
    with connect(engine) as conn:
        return [_user(r) for r in conn.execute(sa.select(U).order_by(U.c.name))]


def set_password(engine: Engine, name: str, password_hash: str) -> None:
    get_user(engine, name)
    with connect(engine, write=True) as conn:
        conn.execute(sa.update(U).where(U.c.name == name).values(password_hash=password_hash))


def set_disabled(engine: Engine, name: str, disabled: bool) -> None:
    """Disable a user (their sessions end at their next request) or enable them again."""
    get_user(engine, name)
    with connect(engine, write=True) as conn:
        conn.execute(
            sa.update(U).where(U.c.name == name).values(disabled_at=utcnow() if disabled else None)
        )
