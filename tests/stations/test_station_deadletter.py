"""A result the database cannot take must never hold up the results behind it (issue 10, item 2).

An MQTT trigger whose part id is 200 characters long, or holds a NUL, used to stop the ``sql``
sink on PostgreSQL (StringDataRightTruncation / DataError): NEEDS ACTION, and every later result
stuck behind that row, across restarts. Now the recorder normalises what it writes, and a row
the database still refuses for its content is set aside as a dead letter (shown by
``inspect station status``, replayed by ``inspect station replay`` after the fix). Runs on
SQLite and on the PostgreSQL test server (``db_url``).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from inspect_core.plugin_api.interfaces import SourceItem
from inspect_stations.config.station import load_config
from inspect_stations.pipeline.daemon import Station
from inspect_stations.pipeline.journal import Journal, read_dead_letters
from inspect_stations.testing import FakeInspector, MemorySink, write_config


class Frames:
    """A source of camera frames as an MQTT-triggered camera delivers them."""

    def __init__(self, items: list[SourceItem]):
        self._items = items

    def items(self):
        yield from self._items

    def done(self, item, inspection) -> None:
        pass

    def close(self) -> None:
        pass


def frame(
    value: int,
    *,
    rid: str | None = None,
    part_id: str | None = None,
    lot: str | None = "L1",
    frame_no: int = 0,
) -> SourceItem:
    """A 16x24 frame of one grey ``value`` (same value = byte-identical frame)."""
    return SourceItem(
        source=f"cam#frame={frame_no}",
        frame=np.full((16, 24), value, np.uint8),
        captured_at=time.time(),
        part_id=part_id,
        lot=lot,
        request_id=rid,
        frame_no=frame_no,
    )


def station_config(tmp: Path, url: str, name: str = "dl"):
    (tmp / "inbox").mkdir(exist_ok=True)
    path = write_config(
        tmp / "station.toml",
        {
            "station": {
                "name": name,
                "plugin": "tiny",
                "recipe": "tiny",
                "journal_retry_s": 0.1,
                "flush_timeout_s": 3.0,
                "until_empty": True,
            },
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0},
            "database": {"url": url},
        },
    )
    return path, load_config(path)


def run_station(cfg, items: list[SourceItem], **kw) -> Station:
    station = Station(cfg, inspector=FakeInspector(), source=Frames(items), **kw)
    assert station.run(install_signals=False) == 0
    return station


def db_rows(url: str, cols: str = "part_id, lot") -> list[tuple]:
    from inspect_db.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as c:
            return [
                tuple(r) for r in c.execute(sa.text(f"SELECT {cols} FROM inspection ORDER BY id"))
            ]
    finally:
        engine.dispose()


def pending(tmp: Path) -> int:
    con = sqlite3.connect(tmp / "state" / "journal.sqlite")
    try:
        return con.execute("SELECT count(*) FROM journal").fetchone()[0]
    finally:
        con.close()


class Logs:
    """Collects the station log's (event, message) pairs."""

    def __enter__(self):
        self.items: list[tuple[str, str]] = []
        self.handler = logging.Handler()
        self.handler.emit = lambda r: self.items.append((getattr(r, "event", None), r.getMessage()))
        self.log = logging.getLogger("inspect.station")
        self.level = self.log.level
        self.log.setLevel(logging.INFO)
        self.log.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        self.log.removeHandler(self.handler)
        self.log.setLevel(self.level)

    def of(self, event: str) -> list[str]:
        return [m for e, m in self.items if e == event]


def refuse_lot(url: str, lot: str) -> None:
    """Make the database refuse inspections of ``lot`` (as a DBA's constraint would)."""
    from inspect_db.engine import make_engine
    from inspect_db.records.recorder import Recorder

    with Recorder(url) as rec:
        rec.connect()
    engine = make_engine(url)
    with engine.begin() as c:
        if engine.dialect.name == "sqlite":
            c.execute(
                sa.text(
                    "CREATE TRIGGER refuse_lot BEFORE INSERT ON inspection "
                    f"WHEN NEW.lot = '{lot}' BEGIN "
                    "SELECT RAISE(ABORT, 'lot refused by a test trigger'); END"
                )
            )
        else:
            c.execute(
                sa.text(
                    "ALTER TABLE inspection ADD CONSTRAINT refuse_lot "
                    f"CHECK (lot IS NULL OR lot <> '{lot}')"
                )
            )
    engine.dispose()


def accept_lots(url: str) -> None:
    from inspect_db.engine import make_engine

    engine = make_engine(url)
    with engine.begin() as c:
        c.execute(
            sa.text(
                "DROP TRIGGER refuse_lot"
                if engine.dialect.name == "sqlite"
                else "ALTER TABLE inspection DROP CONSTRAINT refuse_lot"
            )
        )
    engine.dispose()


def test_overlong_and_nul_part_ids_are_recorded_and_nothing_waits_behind_them(db_url, tmp_path):
    _, cfg = station_config(tmp_path, db_url)
    items = [
        frame(10, rid="T1", part_id="P" * 200),
        frame(20, rid="T2", part_id="P\x00X"),
        frame(30, rid="T3", part_id="P3", lot="L\x00" + "x" * 300),
        frame(40, rid="T4"),
    ]
    with Logs() as logs:
        station = run_station(cfg, items)
    assert pending(tmp_path) == 0, logs.items
    rows = db_rows(db_url)
    assert len(rows) == 4
    assert rows[0][0] == "P" * 127 + "\u2026"  # cut to the column with a visible marker
    assert rows[1][0] == "PX" and rows[2][1] == "L" + "x" * 126 + "\u2026"
    assert rows[3] == (None, "L1")
    assert not logs.of("dead_letter") and not logs.of("sink_failed")
    assert not any(s.needs_action for s in station.slots)


def test_a_refused_result_is_set_aside_and_replayed_after_the_fix(db_url, tmp_path):
    from inspect_stations.commands import station_group

    path, cfg = station_config(tmp_path, db_url)
    refuse_lot(db_url, "BAD")
    items = [
        frame(1, rid="A"),
        frame(2, rid="B", part_id="P-bad", lot="BAD"),
        frame(3, rid="C"),
        frame(4, rid="D"),
    ]
    with Logs() as logs:
        run_station(cfg, items)
    # the results behind the refused one are recorded; it waits aside, with its reason
    assert [r[1] for r in db_rows(db_url)] == ["L1", "L1", "L1"] and pending(tmp_path) == 0
    (msg,) = logs.of("dead_letter")
    assert "P-bad" in msg and "inspect station replay" in msg and "Integrity" in msg
    written = json.loads((tmp_path / "state" / "status.json").read_text())  # by the station
    assert written["dead_letters"]["count"] == 1
    assert written["dead_letters"]["latest"][0]["part_id"] == "P-bad"
    status = CliRunner().invoke(station_group, ["status", str(path)])
    assert "NEEDS ACTION" in status.output and "1 result(s) refused" in status.output
    assert "lot refused" in status.output or "refuse_lot" in status.output, status.output

    run_station(cfg, [frame(5, rid="E")])  # a restart: still set aside, still shown
    dead = read_dead_letters(tmp_path / "state")
    assert dead.count == 1 and dead.latest[0].part_id == "P-bad"
    assert len(db_rows(db_url)) == 4

    replay = CliRunner().invoke(station_group, ["replay", str(path)])  # before the fix: kept
    assert replay.exit_code == 0 and "1 result(s)" in replay.output, replay.output
    run_station(cfg, [])
    assert read_dead_letters(tmp_path / "state").count == 1 and len(db_rows(db_url)) == 4

    accept_lots(db_url)  # the fix
    replay = CliRunner().invoke(station_group, ["replay", str(path)])
    assert replay.exit_code == 0, replay.output
    run_station(cfg, [])
    assert read_dead_letters(tmp_path / "state").count == 0 and pending(tmp_path) == 0
    rows = db_rows(db_url, "part_id, lot")
    assert len(rows) == 5 and ("P-bad", "BAD") in rows
    status = CliRunner().invoke(station_group, ["status", str(path)])
    assert "NEEDS ACTION" not in status.output, status.output


def test_a_journal_row_that_cannot_be_read_is_set_aside(tmp_path):
    """A corrupt row (or one written by a newer inspect) used to block its sink for good."""
    _, cfg = station_config(tmp_path, "sqlite://")
    j = Journal(tmp_path / "state" / "journal.sqlite")
    j.db.execute(
        "INSERT INTO journal (sink, sha256, payload, created) VALUES "
        "('db', 'x', '{\"not\": \"an inspection\"}', 0)"
    )
    j.close()
    sink = MemorySink()
    with Logs() as logs:
        run_station(cfg, [frame(7)], sinks={"db": sink})
    assert len(sink.items) == 1 and pending(tmp_path) == 0
    dead = read_dead_letters(tmp_path / "state")
    assert dead.count == 1 and "cannot be read" in dead.latest[0].reason
    assert logs.of("dead_letter")


def test_an_outage_is_not_a_dead_letter(tmp_path):
    """Waiting fixes an outage: those results stay in line, nothing is set aside."""
    from inspect_stations.testing import FlakySink

    _, cfg = station_config(tmp_path, "sqlite://")
    sink = FlakySink()
    sink.up.clear()
    cfg.flush_timeout_s = 0.3
    run_station(cfg, [frame(1), frame(2)], sinks={"db": sink})
    assert pending(tmp_path) == 2 and read_dead_letters(tmp_path / "state").count == 0


@pytest.mark.parametrize("bad", ["\x00", "\ud800", "\udcff"])
def test_recorder_never_hands_the_database_text_it_refuses(db_url, bad):
    from db_support import make_inspection, region

    from inspect_db.records.recorder import Recorder

    insp = make_inspection(1, verdict="FAIL", regions=[region("s" * 80 + bad)])
    insp.source = f"/images/odd{bad}name.png"
    insp.error = f"reason {bad}"
    insp.plugin = "p" * 300
    with Recorder(db_url) as rec:
        assert rec.record(insp)
        rows = db_rows(db_url, "source, plugin")
        assert len(rows) == 1 and "\x00" not in rows[0][0] and len(rows[0][1]) == 128
        assert rec.record(insp) is False  # normalising is deterministic: still one record


def test_non_finite_numbers_in_json_are_stored_as_text(db_url):
    """PostgreSQL's json refuses NaN and Infinity (a rule with ``max = inf``, a card's NaN
    score): they are written as strings instead of failing the record."""
    from db_support import make_inspection
    from sqlalchemy.orm import Session

    from inspect_db.models import InspectionRecord, Model
    from inspect_db.records.recorder import Recorder

    insp = make_inspection(2)
    insp.thresholds = {"max": float("inf"), "rules": [{"min": np.float32("nan")}]}
    with Recorder(db_url) as rec:
        assert rec.record(insp, model_card={"sha256": "ab" * 32, "miou": float("nan")})
        with Session(rec.engine) as s:
            row = s.scalars(sa.select(InspectionRecord)).one()
            assert row.thresholds == {"max": "inf", "rules": [{"min": "nan"}]}
            assert s.scalars(sa.select(Model)).one().card["miou"] == "nan"
