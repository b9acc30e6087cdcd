"""Recording inspections: schema on first use, idempotence, concurrency, errors (schema
migrations: test_db_migrations.py)."""

from __future__ import annotations

import multiprocessing as mp
import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from db_support import make_inspection, region, writer_process
from sqlalchemy.orm import Session

from inspect_db.engine import make_engine
from inspect_db.errors import DatabaseUnavailable, RecordsError
from inspect_db.migrate import head_revision, schema_state
from inspect_db.models import TABLES, InspectionRecord, Model, Station
from inspect_db.records.recorder import Recorder


def count(engine, table: str) -> int:
    with engine.connect() as c:
        return c.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_first_use_migrates_an_empty_database(db_url):
    engine = make_engine(db_url)
    assert schema_state(engine).empty
    with Recorder(engine=engine) as rec:
        assert rec.record(make_inspection(1))
    st = schema_state(engine)
    assert st.up_to_date and st.current == head_revision()
    assert st.our_tables == sorted(TABLES)
    engine.dispose()


def test_record_round_trip(db_url):
    at = datetime(2025, 11, 24, 8, 30, 15, tzinfo=UTC).timestamp()
    insp = make_inspection(
        7,
        verdict="FAIL",
        at=at,
        latency=12.5,
        overlay="/o/7.png",
        regions=[region("scratch", 40), region("dent", 25, class_id=2, x=50)],
    )
    with Recorder(db_url) as rec:
        assert rec.record(insp, model_card={"version": "1.2", "sha256": "ab" * 32})
        with Session(rec.engine) as s:
            row = s.scalars(sa.select(InspectionRecord)).one()
            assert row.station.name == "line-1"
            assert (row.station.plugin, row.station.recipe) == ("industrial", "steel")
            assert len(row.station.config_hash) == 64
            assert row.model.sha256 == "ab" * 32 and row.model.version == "1.2"
            assert row.model.card["version"] == "1.2"
            assert row.inspected_at == datetime(2025, 11, 24, 8, 30, 15)
            assert row.captured_at == datetime(2025, 11, 24, 8, 30, 14, 500000)
            assert (row.verdict, row.latency_ms, row.width, row.height) == ("FAIL", 12.5, 640, 480)
            assert row.fired[0]["rule"] == "min_area" and row.fired[0]["regions"] == [0, 1]
            assert row.thresholds["rules"][0]["min"] == 30
            assert (row.part_id, row.lot, row.overlay_path) == ("P7", "L1", "/o/7.png")
            assert (row.n_regions, row.defect_area_px) == (2, 65)
            regs = sorted(row.regions, key=lambda r: r.area_px)
            assert [r.class_name for r in regs] == ["dent", "scratch"]
            r = regs[1]
            assert (r.bbox_x, r.bbox_y, r.bbox_w, r.bbox_h) == (5, 6, 7, 8)
            assert (r.centroid_x, r.centroid_y) == (8.5, 9.25)
            assert r.polygon == [[5, 6], [12, 6], [12, 14]]
            assert r.area_mm2 == pytest.approx(0.4) and r.max_prob == pytest.approx(0.91)
            assert r.inspected_at == row.inspected_at and r.station_id == row.station_id


def test_thresholds_with_paths_and_numpy_values_are_stored(db_url):
    from pathlib import Path

    import numpy as np

    insp = make_inspection(4)
    insp.thresholds = {
        "pixel_size_mm": np.float32(0.5),
        "model": Path("/m/x.onnx"),
        "roi": np.array([1, 2]),
    }
    with Recorder(db_url) as rec:
        rec.record(insp)
        with Session(rec.engine) as s:
            row = s.scalars(sa.select(InspectionRecord)).one()
            assert row.thresholds == {"pixel_size_mm": 0.5, "model": "/m/x.onnx", "roi": [1, 2]}


def test_error_inspection_keeps_its_reason(db_url):
    with Recorder(db_url) as rec:
        rec.record(make_inspection(3, verdict="ERROR"))
        with Session(rec.engine) as s:
            row = s.scalars(sa.select(InspectionRecord)).one()
            assert (row.verdict, row.error, row.n_regions) == ("ERROR", "cannot read file", 0)


def test_recording_twice_leaves_one_inspection(db_url):
    insp = make_inspection(1, verdict="FAIL", regions=[region(), region(x=30)])
    with Recorder(db_url) as rec:
        assert rec.record(insp) is True
        assert rec.record(insp) is False  # a retry
        assert Recorder(engine=rec.engine).record(insp) is False  # another process, no cache
        assert rec.has("line-1", insp.image_sha256)
        assert not rec.has("line-2", insp.image_sha256)
        assert not rec.has("line-1", "f" * 64)
        assert count(rec.engine, "inspection") == 1 and count(rec.engine, "region") == 2


def test_a_verdict_replaces_the_error_record_of_the_same_file(db_url):
    """A file refused (ERROR: damaged, over a limit, the model failed) and inspected again
    after the fix gets its verdict in place of the ERROR: one record, the verdict's, newer than
    any before it (the review queue polls for ids above the last it showed). A verdict is
    never replaced, neither by another ERROR nor by another verdict."""
    error = make_inspection(4, verdict="ERROR")
    fail = make_inspection(4, verdict="FAIL", regions=[region(), region(x=30)])
    with Recorder(db_url) as rec:
        assert rec.record(error) is True
        assert rec.record(error) is False  # the same ERROR again: nothing new
        assert rec.record(make_inspection(5, station="line-0")) is True  # another station's
        with Session(rec.engine) as s:
            newest = s.scalars(sa.select(sa.func.max(InspectionRecord.id))).one()
        assert rec.record(fail) is True
        assert rec.record(make_inspection(4, verdict="ERROR")) is False
        assert rec.record(make_inspection(4, verdict="PASS")) is False
        assert Recorder(engine=rec.engine).record(error) is False  # no cache: the same answer
        with Session(rec.engine) as s:
            row = s.scalars(sa.select(InspectionRecord).where(InspectionRecord.id > newest)).one()
            assert (row.verdict, row.error, row.n_regions) == ("FAIL", None, 2)
        assert count(rec.engine, "region") == 2 and count(rec.engine, "inspection") == 2
        # another station's ERROR of the same image is its own record
        other = make_inspection(4, verdict="ERROR", station="line-2")
        assert rec.record(other) is True and count(rec.engine, "inspection") == 3


def test_a_verdict_replaces_the_error_its_file_had_when_it_could_not_be_read(db_url):
    """Refused unread (permission, over the byte limit), a file's ERROR is keyed by its path,
    not its content; read after the fix, its verdict names that key (``replaces``)."""
    from dataclasses import replace

    unread = make_inspection(7, verdict="ERROR")  # keyed by a hash of path, size and time
    read = replace(make_inspection(8, verdict="PASS"), replaces=unread.image_sha256)
    other = make_inspection(9, verdict="ERROR")  # another file's ERROR stays
    with Recorder(db_url) as rec:
        assert rec.record(unread) and rec.record(other)
        assert rec.record(read) is True
        with Session(rec.engine) as s:
            rows = s.execute(sa.select(InspectionRecord.image_sha256, InspectionRecord.verdict))
            assert sorted(rows) == sorted(
                [(read.image_sha256, "PASS"), (other.image_sha256, "ERROR")]
            )


def test_stations_and_models_are_get_or_create(db_url):
    with Recorder(db_url) as rec:
        rec.record(make_inspection(1, station="a"))
        rec.record(make_inspection(1, station="b"))  # same image, another station: kept
        rec.record(make_inspection(2, station="a", recipe="knots"))  # station changed recipe
        rec.record(make_inspection(3, station="a", recipe="knots", model="cd" * 32))
        rec.record(make_inspection(4, station="c", model=""))  # no model known
        assert count(rec.engine, "inspection") == 5
        with Session(rec.engine) as s:
            stations = {st.name: st for st in s.scalars(sa.select(Station))}
            assert sorted(stations) == ["a", "b", "c"] and stations["a"].recipe == "knots"
            assert sorted(s.scalars(sa.select(Model.sha256))) == ["ab" * 32, "cd" * 32]
            none = s.scalars(
                sa.select(InspectionRecord).where(InspectionRecord.source.like("%00004.png"))
            ).one()
            assert none.model_id is None


def test_sql_sink_is_registered_by_the_plugin(db_url):
    from inspect_core.plugin_api.manager import load_plugins

    reg = load_plugins()
    assert "records" in reg.plugins and "sql" in reg.sinks
    sink = reg.sinks["sql"]({"url": db_url})
    sink.write(make_inspection(1))
    sink.write(make_inspection(1))
    sink.write(make_inspection(2))
    sink.close()
    assert (sink.written, sink.duplicates) == (2, 1)


def test_default_url_comes_from_the_environment(monkeypatch, tmp_path):
    from inspect_db.engine import DEFAULT_URL, resolve_url

    monkeypatch.delenv("INSPECT_DATABASE_URL", raising=False)
    assert resolve_url(None) == DEFAULT_URL == "sqlite:///inspect.db"
    monkeypatch.setenv("INSPECT_DATABASE_URL", f"sqlite:///{tmp_path}/env.db")
    assert resolve_url(None).endswith("env.db") and resolve_url("sqlite://") == "sqlite://"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("INSPECT_DATABASE_URL")
    with Recorder() as rec:
        rec.record(make_inspection(1))
        with rec.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    assert (tmp_path / "inspect.db").is_file()


def test_threads_share_one_recorder(db_url):
    ids = list(range(60))
    with Recorder(db_url) as rec:
        new = []

        def work(chunk):
            new.append(sum(rec.record(make_inspection(i, regions=[region()])) for i in chunk))

        # overlapping chunks: every image is recorded by two threads
        threads = [threading.Thread(target=work, args=(ids[k : k + 30],)) for k in range(0, 60, 15)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(new) == 60
        assert count(rec.engine, "inspection") == 60 and count(rec.engine, "region") == 60


def test_several_writer_processes_on_an_empty_database(db_url):
    # three processes start on an empty database at once (racing to migrate it), two of them
    # record the same station's images twice over; one image per (station, sha256) remains
    ctx = mp.get_context("spawn")
    jobs = [
        (db_url, "line-1", list(range(0, 40))),
        (db_url, "line-1", list(range(20, 60))),
        (db_url, "line-2", list(range(0, 40))),
    ]
    with ctx.Pool(3) as pool:
        new = pool.starmap(writer_process, jobs)
    assert sum(new[:2]) == 60 and new[2] == 40
    engine = make_engine(db_url)
    assert count(engine, "inspection") == 100 and count(engine, "region") == 100
    assert schema_state(engine).up_to_date
    engine.dispose()


def test_unreachable_database_is_a_clear_error(tmp_path):
    rec = Recorder("postgresql://postgres@127.0.0.1:1/nothing")  # nothing listens on port 1
    with pytest.raises(DatabaseUnavailable) as e:
        rec.record(make_inspection(1))
    msg = str(e.value)
    assert "127.0.0.1:1/nothing" in msg and "server runs" in msg and "--db" in msg
    with pytest.raises(DatabaseUnavailable, match="does not exist"):
        Recorder(f"sqlite:///{tmp_path}/no/such/folder/x.db")
    with pytest.raises(RecordsError, match="only SQLite and PostgreSQL"):
        make_engine("mysql://u@h/db")
    with pytest.raises(RecordsError, match="cannot be parsed"):
        make_engine("not a url")


def test_a_station_can_journal_while_the_database_is_down(sqlite_url, tmp_path):
    """DatabaseUnavailable leaves nothing half-written; the same recorder recovers."""
    locked = make_engine(sqlite_url)
    with Recorder(engine=locked) as rec:
        rec.record(make_inspection(1))
    rec = Recorder(sqlite_url)
    rec.connect()
    with locked.connect() as holder:  # another writer holds the write lock
        holder.execution_options(inspect_write=True)
        holder.begin()
        holder.exec_driver_sql("PRAGMA busy_timeout=0")
        with rec.engine.connect() as c:
            c.exec_driver_sql("PRAGMA busy_timeout=50")  # give up quickly (pooled connection)
        with pytest.raises(DatabaseUnavailable, match="locked"):
            rec.record(make_inspection(2))
        holder.rollback()
    assert rec.record(make_inspection(2)) is True
    assert count(rec.engine, "inspection") == 2
    rec.close()
    locked.dispose()


def test_model_card_named_by_the_inspection_is_stored_once_and_only_if_it_matches(db_url, tmp_path):
    import json

    card = tmp_path / "model.json"
    card.write_text(
        json.dumps(
            {"sha256": "ab" * 32, "classes": ["background", "scratch"], "validation": {"miou": 0.7}}
        )
    )
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps({"sha256": "ef" * 32, "classes": ["background"]}))
    with Recorder(db_url) as rec:
        first = make_inspection(1, model="cd" * 32)
        first.model_card = str(stale)  # describes another model file: not stored
        rec.record(first)
        rec.record(make_inspection(2, model="ab" * 32))  # no card known yet
        later = make_inspection(3, model="ab" * 32)
        later.model_card = str(card)
        rec.record(later)  # a new process (cache below) brings the card: the row gets it
        fresh = Recorder(engine=rec.engine)
        fresh.record(later)
        fresh.record(make_inspection(4, model="ab" * 32))
        with Session(rec.engine) as s:
            models = {m.sha256: m for m in s.scalars(sa.select(Model))}
            assert models["cd" * 32].card is None and models["cd" * 32].version is None
            m = models["ab" * 32]
            assert m.card["validation"]["miou"] == 0.7 and m.version == "ab" * 6
    missing = make_inspection(5, model="ff" * 32)
    missing.model_card = str(tmp_path / "gone.json")  # a vanished card never fails a record
    with Recorder(db_url) as rec:
        assert rec.record(missing)


def test_a_report_reads_one_snapshot_and_sqlite_commits_are_durable(db_url):
    """A report's queries all see one moment (PostgreSQL: REPEATABLE READ, read only), and a
    SQLite commit is fsynced before it returns (synchronous FULL: the station deletes its
    journal row right after)."""
    from inspect_db.engine import connect

    engine = make_engine(db_url)
    try:
        with connect(engine, snapshot=True) as conn:
            if engine.dialect.name == "postgresql":
                assert conn.exec_driver_sql("SHOW transaction_isolation").scalar() == (
                    "repeatable read"
                )
                assert conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "on"
            else:
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        with connect(engine) as conn:  # other connections are not changed by it
            if engine.dialect.name == "postgresql":
                assert conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "off"
    finally:
        engine.dispose()
