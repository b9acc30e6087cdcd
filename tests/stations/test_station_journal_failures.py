"""The journal's own failures and stuck sinks: a journal error never kills the writer, an old
database schema is reported and the results wait, a full disk keeps its cause and leaves no
transaction open, a sink that never answers does not keep the station from stopping."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest
from station_kit import archived, journal_config, pending, start

from inspect_core.types import Decision, Inspection, Verdict
from inspect_stations.config.station import parse_config
from inspect_stations.pipeline.daemon import Station
from inspect_stations.pipeline.journal import JournalEntry, decode, encode
from inspect_stations.testing import FakeInspector, MemorySink, wait_for, write_images


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
    station = Station(journal_config(tmp_path), inspector=FakeInspector(), sinks={"db": sink})
    real, calls = station.journal.oldest, []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) <= 2:
            raise sqlite3.OperationalError("database is locked")
        return real(*a, **k)

    station.journal.oldest = flaky
    with _Records() as logs:
        t = start(station)
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
        t = start(station)
        try:
            write_images(tmp_path / "inbox", 8, seed=12)
            wait_for(lambda: archived(tmp_path) == 8, what="8 images filed")
            wait_for(
                lambda: len(logs.of("db_schema_outdated")) >= 2,
                timeout=10,
                what="the outdated schema reported again",
            )
            assert pending(tmp_path) == 8
            msg = logs.of("db_schema_outdated")[0]
            assert msg[1] == logging.ERROR
            assert "inspect db upgrade" in msg[2] and "Nothing is lost" in msg[2]
            assert not logs.of("sink_unavailable")  # not "unavailable": waiting will not fix it
            snap = station.status.snapshot()["sinks"][0]
            assert snap["needs_action"] is True and "SchemaOutdated" in snap["last_error"]
            from inspect_stations.pipeline.status import format_status

            assert "NEEDS ACTION" in format_status({**station.status.snapshot(), "running": True})
            upgrade(engine)  # the operator runs `inspect db upgrade`
            wait_for(lambda: pending(tmp_path) == 0, what="the journal written after the upgrade")
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
    from inspect_stations.pipeline.journal import Journal

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
    from inspect_stations.pipeline.journal import Journal

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
        journal_config(tmp_path, flush_timeout_s=0.2),
        inspector=FakeInspector(),
        sinks={"db": Hung()},
    )
    t = start(station)
    try:
        write_images(tmp_path / "inbox", 2, seed=13)
        wait_for(lambda: archived(tmp_path) == 2, what="2 images filed")
        t0 = _time.monotonic()
        station.stop()
        t.join(20)
        assert not t.is_alive(), "the station did not stop"
        assert _time.monotonic() - t0 < 15
        assert t.code == 0
        assert pending(tmp_path) == 2  # kept for the next start
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


def test_a_journal_that_is_not_a_database_says_to_move_it_aside(tmp_path):
    from inspect_core.errors import InspectError
    from inspect_stations.pipeline.journal import Journal

    (tmp_path / "journal.sqlite").write_bytes(os.urandom(4096))
    with pytest.raises(InspectError, match="damaged or not a journal .*journal.sqlite.damaged"):
        Journal(tmp_path / "journal.sqlite")
