"""Benchmark of the inspection records: recording rate and ``inspect report`` time.

    .venv/bin/python bench/records.py                 # 1,000,000 inspections, 3,000,000 regions
    .venv/bin/python bench/records.py --n 100000      # a quicker run
    .venv/bin/python bench/records.py --no-pg         # SQLite only

1. Recording rate: ``Recorder.record`` of inspections with 5 regions each, one transaction per
   inspection (as a station does), on SQLite (a WAL file) and on PostgreSQL (a database
   ``inspect_bench_<random>`` created on the server and dropped afterwards), by one writer and
   by ``--writers`` concurrent writers (threads, one station each). A single PostgreSQL writer
   waits for the server's WAL flush at every commit, so its rate is bounded by the disk's
   fsync latency; concurrent writers share flushes (group commit).
2. Report time: a SQLite database bulk-filled in SQL (a recursive CTE, no Python loop over rows)
   with ``--n`` inspections over 30 days at 4 stations and 3 regions per inspection on average;
   then :func:`inspect_db.reports.query.build_report` with several filters, and the whole
   ``inspect report --json`` command (process start included).

4. ``--mixed-only``: the report over stations that alternate two recipes (one range query
   against one query per mixed group, the code before, in one run).
3. ``--sync-only``: SQLite's recording rate with ``synchronous=NORMAL`` against ``FULL`` (what
   inspect sets), alternated in one run.

Prints a Markdown table (``--out FILE`` writes it too).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from records_data import fill_sqlite, pg_database, synthetic  # noqa: E402

from inspect_core.types import Inspection  # noqa: E402
from inspect_db.engine import make_engine  # noqa: E402
from inspect_db.migrate import ensure_schema  # noqa: E402
from inspect_db.records.recorder import Recorder  # noqa: E402
from inspect_db.reports.filters import ReportFilters  # noqa: E402
from inspect_db.reports.query import build_report  # noqa: E402


def record_rate(url: str, n: int, writers: int = 1) -> float:
    """Inspections per second recorded by ``writers`` threads (one station each) sharing one
    :class:`Recorder`, one transaction per inspection."""
    import threading

    items = [[synthetic(i, f"bench-{w}") for i in range(w, n, writers)] for w in range(writers)]
    with Recorder(url) as rec:
        for w in range(writers):
            rec.record(synthetic(10**9, f"bench-{w}"))  # connect, migrate, warm the caches

        def work(chunk: list[Inspection]) -> None:
            for insp in chunk:
                rec.record(insp)

        threads = [threading.Thread(target=work, args=(c,)) for c in items]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        dt = time.perf_counter() - t
        assert rec.count() == n + writers
    return n / dt


def time_report(url: str, **filters) -> tuple[float, int]:
    engine = make_engine(url)
    ensure_schema(engine)
    t = time.perf_counter()
    rep = build_report(engine, ReportFilters.parse(**filters)).to_dict()
    dt = time.perf_counter() - t
    engine.dispose()
    return dt, rep["total"]


def time_cli(url: str) -> float:
    exe = Path(sys.executable).with_name("inspect")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "inspect_core.cli"]
    t = time.perf_counter()
    subprocess.run([*cmd, "report", "--json", "--db", url], check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="inspections in the report database")
    ap.add_argument("--record-n", type=int, default=2000, help="inspections recorded per backend")
    ap.add_argument(
        "--pg",
        default=os.environ.get("INSPECT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test"),
        help="an admin URL on the PostgreSQL server (a scratch database is created)",
    )
    ap.add_argument(
        "--writers",
        type=int,
        default=4,
        help="concurrent writer threads (stations) of the second recording run",
    )
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument(
        "--sync-only",
        action="store_true",
        help="only SQLite's recording rate with synchronous NORMAL against FULL, alternated",
    )
    ap.add_argument(
        "--mixed-only",
        action="store_true",
        help="only the report over stations alternating two recipes: one range query against "
        "one query per mixed group",
    )
    ap.add_argument("--out", help="also write the Markdown table here")
    args = ap.parse_args()

    rows: list[tuple[str, str]] = []

    def add(measurement: str, result: str) -> None:
        rows.append((measurement, result))
        print(rows[-1], flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        if args.mixed_only:
            measure_mixed(Path(tmp) / "mixed.db", args.n, add)
        elif args.sync_only:
            for mode, rates in sync_rates(tmp, args.record_n).items():
                shown = ", ".join(f"{r:,.0f}" for r in rates)
                add(f"record, SQLite (WAL), synchronous={mode}", f"{shown} inspections/s")
        else:
            measure_recording(args, tmp, add)
            measure_reports(Path(tmp) / "report.db", args.n, add)
    table = (
        "| measurement | result |\n| --- | --- |\n"
        + "\n".join(f"| {a} | {b} |" for a, b in rows)
        + "\n"
    )
    print("\n" + table)
    if args.out:
        Path(args.out).write_text(table)


def measure_recording(args: argparse.Namespace, tmp: str, add: Callable[[str, str], None]) -> None:
    """Recording rates, SQLite and (unless --no-pg) PostgreSQL, with one and more writers."""
    for writers in (1, args.writers):
        rate = record_rate(f"sqlite:///{tmp}/rate{writers}.db", args.record_n, writers)
        add(
            f"record, SQLite (WAL), {writers} writer(s), 5 regions each",
            f"{rate:,.0f} inspections/s",
        )
    if args.no_pg:
        return
    for writers in (1, args.writers):
        url, drop = pg_database(args.pg)
        if url is None:
            add("record, PostgreSQL", f"skipped: {drop}")
            return
        try:
            rate = record_rate(url, args.record_n, writers)
        finally:
            drop()
        add(
            f"record, PostgreSQL (psycopg 3), {writers} writer(s), 5 regions each",
            f"{rate:,.0f} inspections/s",
        )


def sync_rates(tmp: str, n: int, rounds: int = 3) -> dict[str, list[float]]:
    """Recording rate (one writer) with SQLite's ``synchronous`` at NORMAL and at FULL (what
    inspect sets: a commit on disk when it returns), alternated ``rounds`` times in one run."""
    import sqlalchemy as sa

    import inspect_db.records.recorder as recorder

    made = recorder.make_engine
    rates: dict[str, list[float]] = {"NORMAL": [], "FULL": []}
    try:
        for r in range(rounds):
            for mode in rates:

                def make(url=None, *a, _mode=mode, **k):
                    engine = made(url, *a, **k)

                    @sa.event.listens_for(engine, "connect")
                    def _sync(dbapi_conn, _rec) -> None:  # after inspect's own PRAGMAs
                        cur = dbapi_conn.cursor()
                        cur.execute(f"PRAGMA synchronous={_mode}")
                        cur.close()

                    return engine

                recorder.make_engine = make
                rates[mode].append(record_rate(f"sqlite:///{tmp}/sync-{mode}-{r}.db", n))
    finally:
        recorder.make_engine = made
    return rates


def measure_reports(path: Path, n: int, add: Callable[[str, str], None]) -> None:
    """Fill an SQLite database with ``n`` inspections, then time reports over it."""
    info = fill_sqlite(path, n)
    add(
        f"bulk fill SQLite, {n:,} inspections + {info['regions']:,} regions",
        f"{info['fill_s']:.1f} s ({n / info['fill_s']:,.0f} inspections/s), "
        f"{info['size_mb']:,.0f} MB",
    )
    url = f"sqlite:///{path}"
    for label, flt in [
        ("all (30 days)", {}),
        ("--since 24h", {"since": "24h"}),
        ("--since 7d --station line-2", {"since": "7d", "station": "line-2"}),
        ("--verdict FAIL", {"verdict": "FAIL"}),
        ("--plugin industrial --recipe steel", {"plugin": "industrial", "recipe": "steel"}),
    ]:
        dt, total = time_report(url, **flt)
        add(f"build_report {label} ({total:,} inspections)", f"{dt:.2f} s")
    add("`inspect report --json` all, whole process", f"{time_cli(url):.2f} s")


def _split_per_group(conn, w, groups, by_day):
    """The split of mixed-recipe groups as it was before: one query per (hour or day, station,
    verdict) group (what ``--mixed-only`` compares the one range query with)."""
    import sqlalchemy as sa

    from inspect_db.reports.filters import I

    for k, sid, verdict in sorted(groups):
        hours = (k * 24, k * 24 + 23) if by_day else (k, k)
        q = (
            sa.select(I.c.plugin, I.c.recipe, sa.func.count())
            .where(
                *w.scan,
                I.c.inspected_hour.between(*hours),
                I.c.station_id == sid,
                I.c.verdict == verdict,
            )
            .group_by(I.c.plugin, I.c.recipe)
        )
        for plugin, recipe, n in conn.execute(q):
            yield (sid, plugin, recipe), verdict, n


def measure_mixed(path: Path, n: int, add: Callable[[str, str], None]) -> None:
    """Stations that alternate two recipes over the last 7 days: ``build_report --since 7d``
    with the one range query that splits such groups, and with one query per group, in one
    run (the report's numbers must agree)."""

    import inspect_db.reports.query as rq

    fill_sqlite(path, n)
    con = sqlite3.connect(path)
    con.execute(  # ids run round the 4 stations: every station alternates, every hour is mixed
        "UPDATE inspection SET recipe = 'steel-b' WHERE (id / 4) % 2 = 0 "
        "AND inspected_at >= strftime('%Y-%m-%d %H:%M:%S', 'now', '-7 days')"
    )
    con.commit()
    con.close()
    engine = make_engine(f"sqlite:///{path}")
    flt = ReportFilters.parse(since="7d")

    def timed() -> tuple[float, dict]:
        t = time.perf_counter()
        rep = build_report(engine, flt).to_dict()
        return time.perf_counter() - t, rep

    split = rq._split_mixed
    try:
        one, rep = timed()
        rq._split_mixed = _split_per_group
        per_group, rep2 = timed()
    finally:
        rq._split_mixed = split
        engine.dispose()
    assert rep["stations"] == rep2["stations"] and rep["total"] == rep2["total"]
    what = f"build_report --since 7d, recipes alternating ({rep['total']:,})"
    add(f"{what}, one range query", f"{one:.2f} s")
    add(f"{what}, one query per mixed group (before)", f"{per_group:.2f} s")
    add("ratio, before / now", f"{per_group / one:.1f}x")


if __name__ == "__main__":
    main()
