"""The recorded inspections a backtest re-judges: those of a window (time, station, plugin,
recipe) that have a verdict, streamed from the database in id order (a million rows never sit
in memory), each with the recipe settings it was judged under and the model that judged it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from inspect_batch.items import BacktestItem, Chunk, RecipeSettings
from inspect_batch.stream import chunks
from inspect_core.errors import InspectError
from inspect_db.engine import connect
from inspect_db.models import InspectionRecord, Model, Station
from inspect_db.reports.filters import Conditions, ReportFilters, conditions

INSP = InspectionRecord.__table__
S = Station.__table__
M = Model.__table__
JUDGED = ("PASS", "REVIEW", "FAIL")


@dataclass(frozen=True)
class PathMap:
    """``--path-map OLD=NEW``: a recorded path starting with OLD is read as NEW + the rest (an
    archive mounted elsewhere on the workers, or moved to an fsspec URL such as s3://...)."""

    old: str
    new: str

    @classmethod
    def parse(cls, text: str) -> PathMap:
        old, sep, new = text.partition("=")
        if not sep or not old or not new:
            raise InspectError(
                f"--path-map {text!r}: give OLD=NEW, e.g. /srv/archive=/mnt/line1/archive"
            )
        return cls(old, new)


def where_read(path: str, maps: list[PathMap]) -> str:
    """Where ``path`` is read: the first map whose OLD is the path or a folder above it
    (``/srv/archive`` maps ``/srv/archive/x.png``, not ``/srv/archive2/x.png``)."""
    for m in maps:
        old = m.old.rstrip("/")
        if path == old or path.startswith(old + "/"):
            return m.new.rstrip("/") + path[len(old) :]
    return path


def judged(f: ReportFilters) -> ReportFilters:
    """``f`` narrowed to the records with a verdict (an ERROR has none to compare)."""
    return replace(f, verdicts=list(JUDGED))


def window(conn: sa.Connection, f: ReportFilters) -> tuple[int, int, int]:
    """How many judged records the window holds (for the progress bar), and the lowest and
    highest id among them: the backtest reads that id range and no further, so records made
    while it runs (the window's end defaults to now) neither move its total nor keep it
    going while stations record faster than the cluster judges."""
    w = conditions(conn, judged(f))
    q = sa.select(sa.func.count(), sa.func.min(INSP.c.id), sa.func.max(INSP.c.id)).where(*w.insp)
    n, lo, hi = conn.execute(q).one()
    return int(n), int(lo or 0), int(hi or 0)


def recorded(
    engine: sa.Engine,
    f: ReportFilters,
    maps: list[PathMap],
    ids: tuple[int, int],
    chunk_size: int = 200,
) -> Iterator[Chunk]:
    """The window's judged inspections with ids in ``ids`` (lowest, highest: from
    :func:`window`) as chunks of :class:`BacktestItem`, each chunk with the recipe settings
    its items name, in id order. Read in pages of ``PAGE`` rows by id, each in a short
    transaction of its own (a read held open for the hours of a backtest would keep a live
    SQLite database's write-ahead log from being checkpointed while stations write); each
    page walks the primary key from where the last ended, its filters checked on the way."""

    def items() -> Iterator[tuple[BacktestItem, RecipeSettings]]:
        after, hi = ids[0] - 1, ids[1]
        w: Conditions | None = None  # looked up once (station id, known plugin and recipe)
        while after < hi:
            with connect(engine) as conn:
                w = w or conditions(conn, judged(f))
                rows = conn.execute(_page(w, after, hi)).all()
            for r in rows:
                yield _item(r, maps)
            if len(rows) < PAGE:
                return
            after = rows[-1].id

    for pairs in chunks(items(), chunk_size):
        settings = {s.key: s.overrides for _, s in pairs}
        yield Chunk([item for item, _ in pairs], settings)


PAGE = 2000  # rows read per transaction


def _item(r: Any, maps: list[PathMap]) -> tuple[BacktestItem, RecipeSettings]:
    s = RecipeSettings.from_thresholds(r.thresholds)
    model = r.version or (r.sha256 or "")[:12] or "unknown"
    item = BacktestItem(
        r.id,
        where_read(r.source, maps),
        r.verdict,
        s.key,
        r.name,
        r.overlay_path,
        r.image_sha256,
        model,
        _ms(r.latency_ms),
        _ms(r.inspect_ms),
    )
    return item, s


def _ms(value: Any) -> float | None:
    return None if value is None else float(value)


def _page(w: Conditions, after: int, hi: int) -> sa.Select[*tuple[Any, ...]]:
    """One page: the ids after ``after`` up to ``hi``; the filters as ``scan`` conditions (on
    SQLite no index but the primary key serves them: the page is a range of the table)."""
    return (
        sa.select(
            INSP.c.id,
            INSP.c.source,
            INSP.c.image_sha256,
            INSP.c.verdict,
            INSP.c.thresholds,
            INSP.c.overlay_path,
            INSP.c.latency_ms,
            INSP.c.inspect_ms,
            S.c.name,
            M.c.version,
            M.c.sha256,
        )
        .join(S, S.c.id == INSP.c.station_id)
        .outerjoin(M, M.c.id == INSP.c.model_id)
        .where(*w.scan, INSP.c.id > after, INSP.c.id <= hi)
        .order_by(INSP.c.id)
        .limit(PAGE)
    )
