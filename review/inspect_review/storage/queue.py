"""Reading for operator review: the queue (REVIEW first, then FAIL, newest first), the next
item, the items that arrived since the page was loaded, and one item with its regions, the
rules that fired and every decision taken on it.

An item is *pending* while no decision names it, or while its latest row is an undo
(:data:`~inspect_review.storage.types.UNDO`); otherwise the latest decision (highest id) is the
one in force, the earlier ones stay as the audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inspect_db.errors import UnknownItem
from inspect_db.tables import RL, RV, I, M, R, S, U
from inspect_review.storage.marks import read_marks
from inspect_review.storage.types import (
    UNDO,
    Arrivals,
    Decided,
    DecisionView,
    ItemView,
    QueueFilters,
    QueueItem,
    RegionLabel,
    RegionView,
    RuleView,
)

# in the queue's conditions (EXISTS): aliases, so that they never correlate with the tables the
# outer query joins
R_ANY = R.alias("region_any")
RV_ANY = RV.alias("review_any")
RV_LAST = RV.alias("review_last")
#: the verdicts the queue lists, in its order
QUEUED = ("REVIEW", "FAIL")
RANK = sa.case((I.c.verdict == "REVIEW", 0), else_=1)


def _where(conn: Connection, f: QueueFilters) -> list[Any]:
    """The conditions of ``f`` on the inspection table (unknown names simply match nothing:
    the page shows an empty queue and the filter that caused it)."""
    w: list[Any] = [I.c.verdict.in_(QUEUED)]
    if f.station is not None:
        w.append(I.c.station_id.in_(sa.select(S.c.id).where(S.c.name == f.station)))
    if f.recipe is not None:
        w.append(I.c.recipe == f.recipe)
    if f.since is not None:
        w.append(I.c.inspected_at >= f.since)
    if f.until is not None:
        w.append(I.c.inspected_at < f.until)
    if f.class_name is not None:
        w.append(
            sa.select(R_ANY.c.id)
            .where(R_ANY.c.inspection_id == I.c.id, R_ANY.c.class_name == f.class_name)
            .exists()
        )
    decided = (  # its latest row is a decision, not an undo
        sa.select(RV_LAST.c.id)
        .where(RV_LAST.c.id == _latest_review(), RV_LAST.c.model_verdict != UNDO)
        .exists()
    )
    if f.status == "pending":
        w.append(~decided)
    elif f.status == "decided":
        w.append(decided)
    return w


def _latest_review() -> Any:
    """The id of the item's latest ``review`` row (a correlated MAX over
    ``ix_review_inspection``, evaluated per item rather than grouping every decision)."""
    return (
        sa.select(sa.func.max(RV_ANY.c.id))
        .where(RV_ANY.c.inspection_id == I.c.id)
        .correlate(I)  # the outer query's item, also from inside an EXISTS
        .scalar_subquery()
    )


def _select_items() -> Any:
    """The queue's columns, each item with its latest decision (none while that is an
    undo)."""
    return (
        sa.select(
            I.c.id,
            S.c.name.label("station"),
            I.c.plugin,
            I.c.recipe,
            I.c.source,
            I.c.verdict,
            I.c.inspected_at,
            I.c.n_regions,
            I.c.defect_area_px,
            RV.c.verdict.label("decided"),
            U.c.name.label("decided_by"),
        )
        .join(S, S.c.id == I.c.station_id)
        .outerjoin(RV, sa.and_(RV.c.id == _latest_review(), RV.c.model_verdict != UNDO))
        .outerjoin(U, U.c.id == RV.c.user_id)
    )


def _items(conn: Connection, rows: Sequence[Any]) -> list[QueueItem]:
    ids = [r.id for r in rows]
    classes: dict[int, set[str]] = {}
    if ids:
        q = sa.select(R.c.inspection_id, R.c.class_name).where(R.c.inspection_id.in_(ids))
        for iid, name in conn.execute(q.distinct()):
            classes.setdefault(iid, set()).add(name)
    return [
        QueueItem(
            r.id,
            r.station,
            r.plugin,
            r.recipe,
            r.source,
            r.verdict,
            r.inspected_at,
            r.n_regions,
            r.defect_area_px,
            tuple(sorted(classes.get(r.id, ()))),
            r.decided,
            r.decided_by,
        )
        for r in rows
    ]


def queue(conn: Connection, f: QueueFilters, limit: int = 200) -> list[QueueItem]:
    """The queue: REVIEW first, then FAIL, each newest first; at most ``limit`` items."""
    q = (
        _select_items()
        .where(*_where(conn, f))
        .order_by(RANK, I.c.inspected_at.desc(), I.c.id.desc())
        .limit(limit)
    )
    return _items(conn, conn.execute(q).all())


def queue_count(conn: Connection, f: QueueFilters) -> int:
    """How many items the queue holds under ``f`` (beyond the page's limit too)."""
    q = sa.select(sa.func.count()).select_from(I).where(*_where(conn, f))
    return int(conn.execute(q).scalar_one())


LATE_IDS = 64  # ids below the page's last one asked again: rows committed out of id order


def arrived_since(conn: Connection, f: QueueFilters, after_id: int, limit: int = 50) -> Arrivals:
    """Items the queue under ``f`` lists that the page, which has seen everything up to
    inspection ``after_id``, does not show yet. The highest id is read first and the new ids up
    to it are taken oldest first, at most ``limit``; when there are more, ``last`` is the
    highest id sent, so the next poll takes the rest (a station back from an outage replays
    hundreds at once). The ``LATE_IDS`` ids below ``after_id`` are asked again: on PostgreSQL
    a row can become visible after a higher id did (the page drops rows it shows already)."""
    upto = last_inspection_id(conn)
    chunk = conn.execute(
        _select_items()
        .where(*_where(conn, f), I.c.id > after_id, I.c.id <= upto)
        .order_by(I.c.id)
        .limit(limit)
    ).all()
    last = upto if len(chunk) < limit else chunk[-1].id
    late = conn.execute(
        _select_items().where(
            *_where(conn, f), I.c.id > max(0, after_id - LATE_IDS), I.c.id <= after_id
        )
    ).all()
    items = _items(conn, [*late, *chunk])
    items.sort(key=lambda i: (i.verdict == "REVIEW", i.inspected_at, i.id), reverse=True)
    return Arrivals(items, max(last, after_id))


def next_item(conn: Connection, f: QueueFilters, after: int | None) -> int | None:
    """The item that follows inspection ``after`` in the queue's order under ``f`` (from the
    top when nothing follows it, or when ``after`` is None); None when the queue is empty."""
    where = _where(conn, f)
    order = (RANK, I.c.inspected_at.desc(), I.c.id.desc())
    if after is not None:
        cur = conn.execute(
            sa.select(RANK.label("rank"), I.c.inspected_at, I.c.id).where(I.c.id == after)
        ).first()
        if cur is not None:
            later = sa.or_(
                RANK > cur.rank,
                sa.and_(RANK == cur.rank, I.c.inspected_at < cur.inspected_at),
                sa.and_(RANK == cur.rank, I.c.inspected_at == cur.inspected_at, I.c.id < cur.id),
            )
            q = sa.select(I.c.id).where(*where, later).order_by(*order).limit(1)
            found = conn.execute(q).scalar_one_or_none()
            if found is not None:
                return int(found)
    q = sa.select(I.c.id).where(*where, I.c.id != (after or 0)).order_by(*order).limit(1)
    found = conn.execute(q).scalar_one_or_none()
    return None if found is None else int(found)


def item(conn: Connection, inspection_id: int) -> ItemView:
    """One inspection as the item page shows it; :class:`UnknownItem` when there is none."""
    row = conn.execute(
        sa.select(
            I,
            S.c.name.label("station"),
            M.c.card,
            M.c.sha256.label("model_sha256"),
            M.c.version.label("model_version"),
            M.c.path.label("model_path"),
        )
        .join(S, S.c.id == I.c.station_id)
        .outerjoin(M, M.c.id == I.c.model_id)
        .where(I.c.id == inspection_id)
    ).first()
    if row is None:
        raise UnknownItem(f"inspection {inspection_id} is not in the database")
    regions = [
        RegionView(
            r.id,
            n,
            r.class_id,
            r.class_name,
            r.area_px,
            r.area_mm2,
            r.max_prob,
            r.mean_prob,
            (r.bbox_x, r.bbox_y, r.bbox_w, r.bbox_h),
            polygon_points(r.polygon),
        )
        for n, r in enumerate(
            conn.execute(sa.select(R).where(R.c.inspection_id == inspection_id).order_by(R.c.id)),
            1,
        )
    ]
    fired = row.fired if isinstance(row.fired, list) else []
    return ItemView(
        row.id,
        row.station,
        row.plugin,
        row.recipe,
        row.source,
        row.overlay_path,
        row.width,
        row.height,
        row.verdict,
        row.inspected_at,
        row.part_id,
        row.lot,
        regions,
        [RuleView.from_json(h, len(regions)) for h in fired],
        card_classes(row.card),
        decisions(conn, inspection_id),
        row.model_sha256,
        row.model_version if row.model_path is not None else None,  # registered: a path
        row.thresholds if isinstance(row.thresholds, dict) else {},
    )


def card_classes(card: Any) -> list[str] | None:
    """The class names a recorded model card lists (None when it lists none usable)."""
    classes = card.get("classes") if isinstance(card, dict) else None
    if isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) for c in classes):
        return list(classes)
    return None


def polygon_points(value: Any) -> list[list[int]]:
    if not isinstance(value, list):
        return []
    out = []
    for p in value:
        if isinstance(p, (list, tuple)) and len(p) == 2:
            try:
                out.append([int(p[0]), int(p[1])])
            except (TypeError, ValueError):
                continue
    return out


def decisions(conn: Connection, inspection_id: int) -> list[DecisionView]:
    """Every decision on an inspection, oldest first, each with its region labels and the
    marks it drew."""
    rows = conn.execute(
        sa.select(RV, U.c.name.label("user"))
        .join(U, U.c.id == RV.c.user_id)
        .where(RV.c.inspection_id == inspection_id)
        .order_by(RV.c.id)
    ).all()
    labels: dict[int, dict[int, RegionLabel]] = {}
    if rows:
        q = sa.select(RL).where(RL.c.review_id.in_([r.id for r in rows]))
        for lab in conn.execute(q):
            labels.setdefault(lab.review_id, {})[lab.region_id] = RegionLabel(
                lab.region_id, lab.label, lab.class_name, lab.class_id
            )
    marks = read_marks(conn, [r.id for r in rows])
    return [
        DecisionView(
            r.id,
            r.inspection_id,
            r.user,
            r.decided_at,
            r.verdict,
            r.model_verdict,
            r.note,
            r.supersedes_id,
            labels.get(r.id, {}),
            marks.get(r.id, []),
            r.model_verdict == UNDO,
        )
        for r in rows
    ]


def filter_choices(conn: Connection) -> tuple[list[str], list[str], list[str]]:
    """The station names, recipes and defect classes the filter menus offer: from the station
    and model tables (a few rows each; the classes of the recorded model cards, but the
    first, background), not from a scan of every inspection."""
    stations = conn.execute(sa.select(S.c.name).order_by(S.c.name)).scalars().all()
    recipes = conn.execute(
        sa.select(S.c.recipe).where(S.c.recipe != "").distinct().order_by(S.c.recipe)
    ).scalars()
    classes: set[str] = set()
    for card in conn.execute(sa.select(M.c.card).where(M.c.card.is_not(None))).scalars():
        classes.update((card_classes(card) or [""])[1:])
    return list(stations), list(recipes), sorted(classes)


def last_review_id(conn: Connection) -> int:
    """The highest decision id recorded so far (0 for none)."""
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(RV.c.id), 0))).scalar_one())


def decided_since(conn: Connection, after_id: int, limit: int = 500) -> Decided:
    """Decisions after decision ``after_id`` (and the ``LATE_IDS`` below it, as for
    :func:`arrived_since`), oldest first, at most ``limit``: an open queue page marks the items
    another operator decided, so nobody decides one again from a stale list. An undo is no
    decision: it is skipped (the item it reopens shows on the queue's next load)."""
    rows = conn.execute(
        sa.select(RV.c.id, RV.c.inspection_id, RV.c.verdict, RV.c.model_verdict, U.c.name)
        .join(U, U.c.id == RV.c.user_id)
        .where(RV.c.id > max(0, after_id - LATE_IDS))
        .order_by(RV.c.id)
        .limit(limit)
    ).all()
    last = max([after_id, *(r.id for r in rows)])
    return Decided(
        [(r.inspection_id, r.verdict, r.name) for r in rows if r.model_verdict != UNDO], last
    )


def last_inspection_id(conn: Connection) -> int:
    """The highest inspection id recorded so far (0 for none): what the page has seen."""
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(I.c.id), 0))).scalar_one())


def media_paths(conn: Connection, inspection_id: int) -> tuple[str, str | None, str]:
    """The recorded image and overlay paths of an inspection and the image's sha256;
    :class:`UnknownItem` if none."""
    row = conn.execute(
        sa.select(I.c.source, I.c.overlay_path, I.c.image_sha256).where(I.c.id == inspection_id)
    ).first()
    if row is None:
        raise UnknownItem(f"inspection {inspection_id} is not in the database")
    return row.source, row.overlay_path, row.image_sha256
