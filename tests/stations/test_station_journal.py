"""Database outages: results go to the local journal and are written, in order, once the
database is back; nothing lost, nothing duplicated. A fake flaky sink, then real PostgreSQL.
The journal's own failures and a stuck sink: test_station_journal_failures.py."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from station_kit import archived, journal_config, pending, start

from inspect_core.types import Decision, Inspection, Region, RuleHit, Verdict
from inspect_stations.config.station import parse_config
from inspect_stations.pipeline.daemon import Station
from inspect_stations.pipeline.journal import decode, encode
from inspect_stations.testing import (
    FakeInspector,
    FlakySink,
    PostgresCluster,
    pg_bin,
    wait_for,
    write_images,
)


def test_journal_roundtrip_keeps_every_field():
    insp = Inspection(
        source="/a/b.png",
        image_sha256="ab" * 32,
        width=7,
        height=5,
        verdict=Verdict(
            Decision.REVIEW,
            [RuleHit("min_area", Decision.REVIEW, "1 region", [0])],
            [
                Region(
                    1,
                    "scratch",
                    (1, 2, 3, 4),
                    12,
                    (2.123456, 3.5),
                    0.61234567,
                    0.55,
                    [(1, 2), (3, 4)],
                    0.12,
                )
            ],
            {"scratch": 0.25},
        ),
        station="s",
        plugin="p",
        recipe="r",
        model_sha256="cd" * 32,
        thresholds={"rules": [{"type": "min_area", "min": 3}]},
        captured_at=1.5,
        inspected_at=2.5,
        latency_ms=3.25,
        part_id="P1",
        lot="L1",
        error=None,
    )
    assert decode(encode(insp)) == insp


def test_outage_journals_in_order_and_replays_without_duplicates(tmp_path):
    sink = FlakySink()
    station = Station(journal_config(tmp_path), inspector=FakeInspector(), sinks={"db": sink})
    t = start(station)
    try:
        write_images(tmp_path / "inbox", 20, seed=1)
        wait_for(lambda: len(sink.items) == 20, what="20 records")
        sink.up.clear()  # the database goes away
        write_images(tmp_path / "inbox", 30, seed=2, start=20)
        wait_for(lambda: archived(tmp_path) == 50, what="images filed during the outage")
        wait_for(lambda: sink.failures > 0, what="a failed write")
        assert len(sink.items) == 20 and pending(tmp_path) == 30
        wait_for(
            lambda: station.status.snapshot().get("sinks", [{}])[0].get("up") is False,
            what="status to show the sink down",
        )
        sink.up.set()  # back
        wait_for(lambda: len(sink.items) == 50, what="the journal to be replayed")
        write_images(tmp_path / "inbox", 5, seed=3, start=50)
        wait_for(lambda: len(sink.items) == 55, what="new images after the outage")
    finally:
        station.stop()
        t.join(30)
    assert t.code == 0 and not t.is_alive()
    names = [Path(i.source).name for i in sink.items]
    assert names == sorted(names)  # written in the order they were inspected
    times = [i.inspected_at for i in sink.items]
    assert times == sorted(times)
    assert sink.duplicates == 0 and len({i.image_sha256 for i in sink.items}) == 55
    assert pending(tmp_path) == 0 and sink.closed


def test_results_journaled_at_shutdown_are_written_at_the_next_start(tmp_path):
    sink = FlakySink()
    sink.up.clear()
    station = Station(
        journal_config(tmp_path, flush_timeout_s=0.2), inspector=FakeInspector(), sinks={"db": sink}
    )
    t = start(station)
    write_images(tmp_path / "inbox", 12, seed=4)
    wait_for(lambda: archived(tmp_path) == 12, what="12 images filed")
    station.stop()
    t.join(30)
    assert t.code == 0 and sink.items == [] and pending(tmp_path) == 12
    status = (tmp_path / "state" / "status.json").read_text()
    assert '"journal_pending": 12' in status

    sink.up.set()  # a later start with the database reachable writes them first
    station = Station(
        journal_config(tmp_path, until_empty=True), inspector=FakeInspector(), sinks={"db": sink}
    )
    assert station.run(install_signals=False) == 0
    assert len(sink.items) == 12 and pending(tmp_path) == 0


def test_a_sink_that_cannot_even_be_created_is_retried(tmp_path):
    """The sql sink connects when created: a station started during an outage still runs."""
    made = []
    up = threading.Event()

    def factory():
        if not up.is_set():
            raise ConnectionError("connection refused")
        made.append(FlakySink())
        return made[-1]

    station = Station(journal_config(tmp_path), inspector=FakeInspector(), sinks={"db": factory})
    t = start(station)
    try:
        write_images(tmp_path / "inbox", 6, seed=5)
        wait_for(lambda: archived(tmp_path) == 6, what="6 images filed")
        assert pending(tmp_path) == 6
        up.set()
        wait_for(lambda: made and len(made[0].items) == 6, what="records after the outage")
    finally:
        station.stop()
        t.join(30)
    assert len(made) == 1


def _pg_rows(url: str) -> list[tuple]:
    import sqlalchemy as sa

    eng = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with eng.connect() as c:
            return c.execute(
                sa.text("SELECT id, image_sha256, inspected_at, source FROM inspection ORDER BY id")
            ).fetchall()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):  # down, or no schema yet
        return []
    finally:
        eng.dispose()


@pytest.mark.skipif(
    pg_bin() is None or shutil.which("runuser") is None and os.geteuid() == 0,
    reason="PostgreSQL server binaries not installed",
)
def test_postgres_stopped_while_images_flow(tmp_path, tiny_model):
    from inspect_core.plugin_api.manager import get_registry
    from inspect_core.runtime.recipe import Recipe

    if "sql" not in get_registry().sinks:
        pytest.skip("the records plugin (sql sink) is not installed")
    pytest.importorskip("psycopg")
    pg = PostgresCluster()
    try:
        pg.init().start()
        (tmp_path / "inbox").mkdir()
        cfg = parse_config(
            {
                "station": {
                    "name": "pg-outage",
                    "plugin": "tiny",
                    "recipe": "tiny",
                    "journal_retry_s": 0.2,
                },
                "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
                "database": {"url": pg.url},
            },
            tmp_path,
        )
        recipe = Recipe(name="tiny", model=tiny_model, rules=[{"type": "min_area", "min": 1}])
        station = Station(cfg, recipe=recipe)
        t = start(station)
        try:
            write_images(tmp_path / "inbox", 30, seed=6)
            wait_for(lambda: len(_pg_rows(pg.url)) == 30, timeout=60, what="30 rows in PostgreSQL")
            pg.stop("fast")
            write_images(tmp_path / "inbox", 40, seed=7, start=30)
            wait_for(lambda: archived(tmp_path) == 70, timeout=60, what="70 images filed")
            wait_for(lambda: pending(tmp_path) == 40, timeout=60, what="40 journaled results")
            pg.start()
            write_images(tmp_path / "inbox", 10, seed=8, start=70)
            wait_for(
                lambda: len(_pg_rows(pg.url)) == 80 and pending(tmp_path) == 0,
                timeout=60,
                what="80 rows after PostgreSQL came back",
            )
        finally:
            station.stop()
            t.join(60)
        assert t.code == 0
        rows = _pg_rows(pg.url)
        assert len(rows) == 80 and len({r[1] for r in rows}) == 80
        names = [Path(r[3]).name for r in rows]
        assert names == sorted(names), "journaled results were not written in order"
        assert [r[2] for r in rows] == sorted(r[2] for r in rows)
    finally:
        pg.cleanup()
