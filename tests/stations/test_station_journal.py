"""Database outages: results go to the local journal and are written, in order, once the
database is back; nothing lost, nothing duplicated. A fake flaky sink, then real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from inspect_core.types import Decision, Inspection, Region, RuleHit, Verdict
from inspect_stations.config import parse_config
from inspect_stations.daemon import Station
from inspect_stations.journal import JournalEntry, decode, encode
from inspect_stations.testing import (
    FakeInspector,
    FlakySink,
    MemorySink,
    PostgresCluster,
    pg_bin,
    wait_for,
    write_images,
)


def _config(tmp: Path, **station):
    (tmp / "inbox").mkdir(exist_ok=True)
    return parse_config(
        {
            "station": {
                "name": "outage",
                "plugin": "tiny",
                "recipe": "tiny",
                "journal_retry_s": 0.1,
                **station,
            },
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
            "database": {"enabled": False},
        },
        tmp,
    )


def _start(station: Station) -> threading.Thread:
    t = threading.Thread(target=lambda: setattr(t, "code", station.run(install_signals=False)))
    t.start()
    return t


def _archived(tmp: Path) -> int:
    return sum(1 for p in (tmp / "archive").rglob("*.png"))


def _pending(tmp: Path) -> int:
    con = sqlite3.connect(tmp / "state" / "journal.sqlite")
    try:
        return con.execute("SELECT count(*) FROM journal").fetchone()[0]
    finally:
        con.close()


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
    station = Station(_config(tmp_path), inspector=FakeInspector(), sinks={"db": sink})
    t = _start(station)
    try:
        write_images(tmp_path / "inbox", 20, seed=1)
        wait_for(lambda: len(sink.items) == 20, what="20 records")
        sink.up.clear()  # the database goes away
        write_images(tmp_path / "inbox", 30, seed=2, start=20)
        wait_for(lambda: _archived(tmp_path) == 50, what="images filed during the outage")
        wait_for(lambda: sink.failures > 0, what="a failed write")
        assert len(sink.items) == 20 and _pending(tmp_path) == 30
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
    assert _pending(tmp_path) == 0 and sink.closed


def test_results_journaled_at_shutdown_are_written_at_the_next_start(tmp_path):
    sink = FlakySink()
    sink.up.clear()
    station = Station(
        _config(tmp_path, flush_timeout_s=0.2), inspector=FakeInspector(), sinks={"db": sink}
    )
    t = _start(station)
    write_images(tmp_path / "inbox", 12, seed=4)
    wait_for(lambda: _archived(tmp_path) == 12, what="12 images filed")
    station.stop()
    t.join(30)
    assert t.code == 0 and sink.items == [] and _pending(tmp_path) == 12
    status = (tmp_path / "state" / "status.json").read_text()
    assert '"journal_pending": 12' in status

    sink.up.set()  # a later start with the database reachable writes them first
    station = Station(
        _config(tmp_path, until_empty=True), inspector=FakeInspector(), sinks={"db": sink}
    )
    assert station.run(install_signals=False) == 0
    assert len(sink.items) == 12 and _pending(tmp_path) == 0


def test_a_sink_that_cannot_even_be_created_is_retried(tmp_path):
    """The sql sink connects when created: a station started during an outage still runs."""
    made = []
    up = threading.Event()

    def factory():
        if not up.is_set():
            raise ConnectionError("connection refused")
        made.append(FlakySink())
        return made[-1]

    station = Station(_config(tmp_path), inspector=FakeInspector(), sinks={"db": factory})
    t = _start(station)
    try:
        write_images(tmp_path / "inbox", 6, seed=5)
        wait_for(lambda: _archived(tmp_path) == 6, what="6 images filed")
        assert _pending(tmp_path) == 6
        up.set()
        wait_for(lambda: made and len(made[0].items) == 6, what="records after the outage")
    finally:
        station.stop()
        t.join(30)
    assert len(made) == 1


# -- real PostgreSQL ---------------------------------------------------------------------------
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
        t = _start(station)
        try:
            write_images(tmp_path / "inbox", 30, seed=6)
            wait_for(lambda: len(_pg_rows(pg.url)) == 30, timeout=60, what="30 rows in PostgreSQL")
            pg.stop("fast")
            write_images(tmp_path / "inbox", 40, seed=7, start=30)
            wait_for(lambda: _archived(tmp_path) == 70, timeout=60, what="70 images filed")
            wait_for(lambda: _pending(tmp_path) == 40, timeout=60, what="40 journaled results")
            pg.start()
            write_images(tmp_path / "inbox", 10, seed=8, start=70)
            wait_for(
                lambda: len(_pg_rows(pg.url)) == 80 and _pending(tmp_path) == 0,
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


# -- review fixes: the writer never dies, an old schema is reported, shutdown is bounded -------
class _Records:
    """Collects station log records (event, level, message)."""

    def __init__(self):
        import logging

        self.items: list[tuple[str, int, str]] = []
        self.handler = logging.Handler()
        self.handler.emit = lambda r: self.items.append(
            (getattr(r, "event", None), r.levelno, r.getMessage())
        )

    def __enter__(self):
        import logging

        log = logging.getLogger("inspect.station")
        self.level = log.level
        log.setLevel(logging.INFO)
        log.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        import logging

        log = logging.getLogger("inspect.station")
        log.removeHandler(self.handler)
        log.setLevel(self.level)

    def of(self, event: str) -> list[tuple[str, int, str]]:
        return [r for r in self.items if r[0] == event]


def test_a_journal_error_does_not_kill_the_writer(tmp_path):
    """One 'database is locked' while reading the journal (someone opened it in a shell) used to
    end the writer thread for good: the line went on, the database got nothing, silently."""
    sink = MemorySink()
    station = Station(_config(tmp_path), inspector=FakeInspector(), sinks={"db": sink})
    real, calls = station.journal.oldest, []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) <= 2:
            raise sqlite3.OperationalError("database is locked")
        return real(*a, **k)

    station.journal.oldest = flaky
    with _Records() as logs:
        t = _start(station)
        try:
            write_images(tmp_path / "inbox", 5, seed=9)
            wait_for(lambda: len(sink.items) == 5, what="records after the journal error")
        finally:
            station.stop()
            t.join(30)
    assert t.code == 0 and station.writer.error is None
    errors = logs.of("journal_error")
    assert len(errors) == 1 and "database is locked" in errors[0][2]  # said once, not per retry
    assert logs.of("journal_ok")


def test_outdated_schema_is_reported_and_results_wait_in_the_journal(tmp_path):
    """db raises SchemaOutdated (not DatabaseUnavailable): the station says, as an error and
    again while it lasts, to run `inspect db upgrade`; nothing is lost; once upgraded, the
    journal is written in order."""
    pytest.importorskip("inspect_db")
    import logging

    from inspect_core.plugin_api.manager import get_registry
    from inspect_db.engine import make_engine
    from inspect_db.migrate import upgrade

    if "sql" not in get_registry().sinks:
        pytest.skip("the records plugin (sql sink) is not installed")
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    upgrade(engine, "0001")
    (tmp_path / "inbox").mkdir()
    cfg = parse_config(
        {
            "station": {
                "name": "old-schema",
                "plugin": "tiny",
                "recipe": "tiny",
                "journal_retry_s": 0.1,
            },
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
            "database": {"url": url},
        },
        tmp_path,
    )
    station = Station(cfg, inspector=FakeInspector())
    station.writer.remind_s = 0.5
    with _Records() as logs:
        t = _start(station)
        try:
            write_images(tmp_path / "inbox", 8, seed=12)
            wait_for(lambda: _archived(tmp_path) == 8, what="8 images filed")
            wait_for(
                lambda: len(logs.of("db_schema_outdated")) >= 2,
                timeout=10,
                what="the outdated schema reported again",
            )
            assert _pending(tmp_path) == 8
            msg = logs.of("db_schema_outdated")[0]
            assert msg[1] == logging.ERROR
            assert "inspect db upgrade" in msg[2] and "Nothing is lost" in msg[2]
            assert not logs.of("sink_unavailable")  # not "unavailable": waiting will not fix it
            snap = station.status.snapshot()["sinks"][0]
            assert snap["needs_action"] is True and "SchemaOutdated" in snap["last_error"]
            from inspect_stations.status import format_status

            assert "NEEDS ACTION" in format_status({**station.status.snapshot(), "running": True})
            upgrade(engine)  # the operator runs `inspect db upgrade`
            wait_for(lambda: _pending(tmp_path) == 0, what="the journal written after the upgrade")
        finally:
            station.stop()
            t.join(30)
    assert t.code == 0
    con = sqlite3.connect(tmp_path / "old.db")
    names = [Path(r[0]).name for r in con.execute("SELECT source FROM inspection ORDER BY id")]
    con.close()
    assert names == sorted(names) and len(names) == 8


class _FailingDb:
    """A sqlite3 connection whose statements matching ``fail_on`` raise ``error``; when
    ``auto_rollback`` the failure ends the transaction as SQLite does on a full disk."""

    def __init__(self, db, fail_on: str, error: Exception, auto_rollback: bool = False):
        self.db, self.fail_on, self.error, self.auto_rollback = db, fail_on, error, auto_rollback

    def execute(self, sql, *a):
        if self.fail_on in sql:
            if self.auto_rollback:
                self.db.execute("ROLLBACK")
            raise self.error
        return self.db.execute(sql, *a)

    def executemany(self, sql, *a):
        return self.execute(sql) if self.fail_on in sql else self.db.executemany(sql, *a)

    def __getattr__(self, name):
        return getattr(self.db, name)


def test_journal_failures_keep_their_cause_and_leave_no_transaction_open(tmp_path):
    from inspect_stations.journal import Journal

    j = Journal(tmp_path / "journal.sqlite")
    insp = Inspection(
        source="a.png", image_sha256="ab" * 32, width=1, height=1, verdict=Verdict(Decision.PASS)
    )
    real = j.db
    # disk full during commit: SQLite has rolled back already; the error must stay "full"
    j.db = _FailingDb(
        real,
        "INSERT INTO journal",
        sqlite3.OperationalError("database or disk is full"),
        auto_rollback=True,
    )
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        j.commit([JournalEntry(insp, ["db"])])
    # a failed delete must not leave the shared connection inside a transaction
    j.db = real
    j.commit([JournalEntry(insp, ["db"])])
    j.db = _FailingDb(real, "DELETE FROM journal", sqlite3.OperationalError("disk I/O error"))
    with pytest.raises(sqlite3.OperationalError):
        j.remove([1])
    j.db = real
    assert not real.in_transaction
    j.commit([JournalEntry(insp, ["db"])])  # still usable
    assert j.pending() == 2
    j.close()


def test_journal_that_cannot_be_opened_says_what_to_do(tmp_path):
    from inspect_core.errors import InspectError
    from inspect_stations.journal import Journal

    (tmp_path / "state").write_text("a file where the state folder should be")
    with pytest.raises(InspectError, match="station.state_dir"):
        Journal(tmp_path / "state" / "journal.sqlite")


def test_stop_does_not_hang_on_a_sink_that_never_answers(tmp_path):
    """A database stuck in a network call must not keep SIGTERM from ending the station
    (docker stop would kill it after its timeout)."""
    import time as _time

    release = threading.Event()

    class Hung:
        def write(self, insp):
            release.wait(120)

        def close(self):
            pass

    station = Station(
        _config(tmp_path, flush_timeout_s=0.2), inspector=FakeInspector(), sinks={"db": Hung()}
    )
    t = _start(station)
    try:
        write_images(tmp_path / "inbox", 2, seed=13)
        wait_for(lambda: _archived(tmp_path) == 2, what="2 images filed")
        t0 = _time.monotonic()
        station.stop()
        t.join(20)
        assert not t.is_alive(), "the station did not stop"
        assert _time.monotonic() - t0 < 15
        assert t.code == 0
        assert _pending(tmp_path) == 2  # kept for the next start
    finally:
        release.set()


def test_station_records_carry_the_model_card_through_the_journal(tmp_path):
    """Inspection.model_card (the card's path, from Inspector.model_card) survives the journal
    and reaches the database's model row."""
    import json

    from inspect_core.plugin_api.manager import get_registry

    if "sql" not in get_registry().sinks:
        pytest.skip("the records plugin (sql sink) is not installed")
    card = tmp_path / "tiny.json"
    card.write_text(json.dumps({"sha256": "0" * 64, "version": "v7", "val_miou": 0.5}))
    inspector = FakeInspector()
    inspector.model_card = str(card)
    (tmp_path / "inbox").mkdir()
    url = f"sqlite:///{tmp_path / 'records.db'}"
    cfg = parse_config(
        {
            "station": {"name": "card", "plugin": "tiny", "recipe": "tiny", "until_empty": True},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
            "database": {"url": url},
        },
        tmp_path,
    )
    write_images(tmp_path / "inbox", 2, seed=14)
    assert Station(cfg, inspector=inspector).run(install_signals=False) == 0
    con = sqlite3.connect(tmp_path / "records.db")
    rows = con.execute(
        "SELECT m.version, m.card FROM inspection i JOIN model m ON m.id = i.model_id"
    ).fetchall()
    con.close()
    assert len(rows) == 2 and {r[0] for r in rows} == {"v7"}
    assert json.loads(rows[0][1])["val_miou"] == 0.5
    insp = Inspection(
        source="a",
        image_sha256="1" * 64,
        width=1,
        height=1,
        verdict=Verdict(Decision.PASS),
        model_card=str(card),
    )
    assert decode(encode(insp)).model_card == str(card)
