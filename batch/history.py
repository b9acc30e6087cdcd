"""The recorded inspections a backtest re-judges: those of a window (time, station, plugin,
recipe) that have a verdict, streamed from the database in id order (a million rows never sit
in memory), each with the recipe settings it was judged under."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa

from inspect_batch.items import BacktestItem, Chunk, RecipeSettings
from inspect_batch.stream import chunks
from inspect_db.models import InspectionRecord, Station
from inspect_db.report_filters import ReportFilters, conditions

INSP = InspectionRecord.__table__
S = Station.__table__
JUDGED = ("PASS", "REVIEW", "FAIL")


@dataclass(frozen=True)
class PathMap:
    """``--path-map OLD=NEW``: a recorded path starting with OLD is read as NEW + the rest (an
    archive mounted elsewhere on the workers, or moved to an fsspec URL such as s3://...)."""

    old: str
    new: str

    @classmethod
    def parse(cls, text: str) -> PathMap:
        from inspect_core.errors import InspectError

        old, sep, new = text.partition("=")
        if not sep or not old or not new:
            raise InspectError(
                f"--path-map {text!r}: give OLD=NEW, e.g. /srv/archive=/mnt/line1/archive"
            )
        return cls(old, new)


def where_read(path: str, maps: list[PathMap]) -> str:
    for m in maps:
        if path.startswith(m.old):
            return m.new + path[len(m.old) :]
    return path


def count(conn: sa.Connection, f: ReportFilters) -> int:
    """How many recorded inspections the window holds (for the progress bar)."""
    w = conditions(conn, f)
    q = sa.select(sa.func.count()).select_from(INSP).where(*w.insp, INSP.c.verdict.in_(JUDGED))
    return int(conn.execute(q).scalar_one())


def recorded(
    conn: sa.Connection, f: ReportFilters, maps: list[PathMap], chunk_size: int = 200
) -> Iterator[Chunk]:
    """The window's judged inspections as chunks of :class:`BacktestItem`, each chunk with the
    recipe settings its items name, in id order, streamed."""
    w = conditions(conn, f)
    q = (
        sa.select(
            INSP.c.id,
            INSP.c.source,
            INSP.c.verdict,
            INSP.c.thresholds,
            INSP.c.overlay_path,
            S.c.name,
        )
        .join(S, S.c.id == INSP.c.station_id)
        .where(*w.insp, INSP.c.verdict.in_(JUDGED))
        .order_by(INSP.c.id)
        .execution_options(yield_per=1000)
    )
    rows = conn.execute(q)

    def items() -> Iterator[tuple[BacktestItem, RecipeSettings]]:
        for r in rows:
            s = RecipeSettings.from_thresholds(r.thresholds)
            item = BacktestItem(
                r.id, where_read(r.source, maps), r.verdict, s.key, r.name, r.overlay_path
            )
            yield item, s

    for pairs in chunks(items(), chunk_size):
        settings = {s.key: s.overrides for _, s in pairs}
        yield Chunk([item for item, _ in pairs], settings)
