"""A backtest from start to end: the window's records streamed from the database, judged on
the cluster in chunks, tallied as results arrive, the operators' decisions looked up for the
images they reviewed, and the page written."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from inspect_batch.cluster import dask_client
from inspect_batch.compare import Tally
from inspect_batch.history import PathMap, count, recorded
from inspect_batch.items import BacktestItem, Chunk
from inspect_batch.stream import stream
from inspect_batch.worker import CandidateOnWorker, CandidateSpec, judge_chunk

Reviews = Callable[[Any, list[int]], dict[int, str]]


def operator_verdicts() -> Reviews | None:
    """The database's lookup of operators' decisions (inspection id -> verdict), where the
    records package has one."""
    try:
        from inspect_db.review_store import human_verdicts
    except ImportError:
        return None
    return human_verdicts


def run_backtest(
    *,
    plugin: str,
    recipe: str,
    candidate: Path,
    sha256: str,
    window: tuple[str | None, str | None, str | None],
    url: str | None,
    scheduler: str | None,
    workers: int,
    chunk: int,
    path_maps: list[str],
    html: Path | None,
    quiet: bool,
) -> dict[str, Any]:
    """Run it; the summary (:meth:`Tally.summary`) with the candidate and window added."""
    from inspect_core.commands.progress import item_progress
    from inspect_db.engine import make_engine
    from inspect_db.report_filters import ReportFilters

    since, until, station = window
    f = ReportFilters.parse(since=since, until=until, station=station, plugin=plugin, recipe=recipe)
    maps = [PathMap.parse(m) for m in path_maps]
    spec = CandidateSpec(plugin, recipe, str(candidate), overlays=html is not None)
    tally = Tally()
    reviews = operator_verdicts()
    engine = make_engine(url)
    try:
        with engine.connect() as conn, dask_client(scheduler, workers) as client:
            total = count(conn, f)
            client.register_plugin(CandidateOnWorker(spec))
            in_flight: dict[int, BacktestItem] = {}
            chunks = _remember(recorded(conn, f, maps, chunk), in_flight)
            n_workers = max(1, len(client.scheduler_info().get("workers", {})))
            label = "" if quiet else f"backtest {plugin}:{recipe}"
            with item_progress(total if not quiet else 0, label) as advance:
                # one database chunk per task; two tasks per worker in flight
                for results in stream(client, judge_chunk, chunks, 1, 2 * n_workers):
                    human = reviews(engine, [r.inspection_id for r in results]) if reviews else {}
                    for r in results:
                        tally.add(in_flight.pop(r.inspection_id), r, human.get(r.inspection_id))
                        advance()
    finally:
        engine.dispose()
    out = tally.summary()
    out["candidate"] = {"path": str(candidate), "sha256": sha256}
    out["window"] = f.to_dict()
    if html is not None:
        from inspect_batch.page import write_page

        meta = {
            "plugin": plugin,
            "recipe": recipe,
            "candidate": str(candidate),
            "sha256": sha256,
            "window": f"since {since or 'the first record'} until {until or 'now'}"
            + (f", station {station}" if station else ""),
        }
        out["html"] = str(write_page(html, tally, meta))
    return out


def _remember(chunks: Iterator[Chunk], in_flight: dict[int, BacktestItem]) -> Iterator[Chunk]:
    """The chunks, each one's items remembered until their results are in (the client holds
    only what is in flight)."""
    for c in chunks:
        for item in c.items:
            in_flight[item.inspection_id] = item
        yield c
