"""A backtest from start to end: the window's records streamed from the database, judged on
the cluster in chunks, tallied as results arrive, the operators' decisions looked up for the
images they reviewed, and the page written."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from inspect_batch.cluster import dask_client
from inspect_batch.compare import Tally
from inspect_batch.history import PathMap, recorded, where_read, window
from inspect_batch.items import BacktestItem, Chunk, ItemResult
from inspect_batch.page import write_page
from inspect_batch.result import BacktestResult
from inspect_batch.safe_read import STATION
from inspect_batch.stream import stream
from inspect_batch.why import recorded_sides
from inspect_batch.worker import CandidateOnWorker, CandidateSpec, judge_chunk
from inspect_core.commands.progress import item_progress
from inspect_core.errors import InspectError
from inspect_db.engine import connect, make_engine, safe_url
from inspect_db.migrate import ensure_schema
from inspect_db.reports.filters import ReportFilters

Reviews = Callable[[Any, list[int]], dict[int, str]]


def operator_verdicts() -> Reviews | None:
    """The database's lookup of operators' decisions (inspection id -> verdict), where the
    records package has one."""
    try:
        # lazy: inside the try that makes the lookup optional (None where it is missing)
        from inspect_db.records.decisions import human_verdicts
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
    sixteen_bit: str = "scale",
    max_bytes: int = STATION.max_bytes,
    max_pixels: int = STATION.max_pixels,
) -> dict[str, Any]:
    """Run it; the summary (:meth:`Tally.summary`) with the candidate and window added. The
    images are read under the station's limits (``max_bytes``, ``max_pixels``: a station's
    defaults unless given); one that breaks them is an error of its own."""
    since, until, station = window
    f = ReportFilters.parse(since=since, until=until, station=station, plugin=plugin, recipe=recipe)
    maps = [PathMap.parse(m) for m in path_maps]
    # the workers load the candidate where they see it (mapped like the images)
    spec = CandidateSpec(
        plugin,
        recipe,
        where_read(str(candidate), maps),
        overlays=html is not None,
        sixteen_bit=sixteen_bit,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
    )
    tally = Tally()
    reviews = operator_verdicts()
    engine = make_engine(url, existing=True)  # it only reads: a mistyped --db creates nothing
    try:
        total, lo, hi = _window(engine, f)
        with dask_client(scheduler, workers) as client:
            client.register_plugin(CandidateOnWorker(spec))
            in_flight: dict[int, BacktestItem] = {}
            chunks = _remember(recorded(engine, f, maps, (lo, hi), chunk), in_flight, tally)
            label = "" if quiet else f"backtest {plugin}:{recipe}"
            with item_progress(total if not quiet else 0, label) as advance:
                # one database chunk per task; two tasks per worker thread in flight
                for results in stream(
                    client, judge_chunk, chunks, 1, lambda: 2 * _threads(client), _lost
                ):
                    _tally(engine, results, in_flight, tally, reviews)
                    for _ in results:
                        advance()
    finally:
        engine.dispose()
    result = tally.result()
    out = result.to_dict()
    out["candidate"] = {"path": str(candidate), "sha256": sha256}
    out["window"] = f.to_dict()
    if html is not None:
        out["html"] = str(_write_html(html, result, plugin, recipe, candidate, sha256, window))
    return out


def _tally(
    engine: Any,
    results: list[ItemResult],
    in_flight: dict[int, BacktestItem],
    tally: Tally,
    reviews: Reviews | None,
) -> None:
    """Count a finished chunk's results, with the operators' verdicts on its images and, for
    the changed images the page still wants, the recorded regions and rules fired."""
    items = [in_flight.pop(r.inspection_id) for r in results]
    human = reviews(engine, [r.inspection_id for r in results]) if reviews else {}
    room = tally.max_examples - len(tally.examples)
    changed = [
        r.inspection_id
        for r, i in zip(results, items, strict=True)
        if r.verdict is not None and r.verdict != i.recorded
    ]
    sides = recorded_sides(engine, changed[: max(0, room)])
    for item, r in zip(items, results, strict=True):
        tally.add(item, r, human.get(r.inspection_id), sides.get(r.inspection_id))


def _write_html(
    html: Path,
    result: BacktestResult,
    plugin: str,
    recipe: str,
    candidate: Path,
    sha256: str,
    window: tuple[str | None, str | None, str | None],
) -> Path:
    """The backtest's page (:func:`inspect_batch.page.write_page`) with its heading's facts."""
    since, until, station = window
    meta = {
        "plugin": plugin,
        "recipe": recipe,
        "candidate": str(candidate),
        "sha256": sha256,
        "window": f"since {since or 'the first record'} until {until or 'now'}"
        + (f", station {station}" if station else ""),
    }
    return write_page(html, result, meta)


def _window(engine: Any, f: Any) -> tuple[int, int, int]:
    """How many judged records the window holds and their id range (:func:`window`); none is
    an error saying where it looked (a mistyped --db, --since or --station would otherwise
    report a backtest of nothing)."""
    ensure_schema(engine, migrate_empty=False)
    with connect(engine) as conn:
        total, lo, hi = window(conn, f)
    if total == 0:
        raise InspectError(
            f"no judged record (PASS, REVIEW or FAIL) of {f.plugin}:{f.recipe} in "
            f"{safe_url(engine.url)} for this window; check --db, --since/--until and --station"
        )
    return total, lo, hi


def _threads(client: Any) -> int:
    """Worker threads the cluster has now (workers may join while it runs; 1 when the
    scheduler does not answer: the tasks out then fail and are counted)."""
    try:
        workers = client.scheduler_info().get("workers", {})
    except Exception:
        return 1
    return max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))


def _lost(chunks: list[Chunk], e: BaseException) -> list[ItemResult]:
    """A task that failed as a whole (its worker killed, the scheduler lost): each of its
    images could not be judged, and the backtest goes on with the others."""
    why = f"the task failed: {type(e).__name__}: {e}"
    return [ItemResult(i.inspection_id, None, error=why) for c in chunks for i in c.items]


def _remember(
    chunks: Iterator[Chunk], in_flight: dict[int, BacktestItem], tally: Tally
) -> Iterator[Chunk]:
    """The chunks, each one's items remembered until their results are in (the client holds
    only what is in flight); once the page has its changed images, no more overlays are
    rendered (a poor candidate would send one PNG per changed image of the window)."""
    for c in chunks:
        for item in c.items:
            in_flight[item.inspection_id] = item
        yield replace(c, overlays=len(tally.examples) < tally.max_examples)
