"""An inspection's time split in two (revision 0006): ``inspect_ms`` (the time spent on the
image) and ``queue_ms`` (its wait behind other images) are recorded, migrated in as NULL for
older records, and shown apart by ``inspect report`` (JSON, terminal, HTML, CSV)."""

from __future__ import annotations

import csv
import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from db_support import make_inspection

from inspect_db.engine import make_engine
from inspect_db.migrate import head_revision, upgrade
from inspect_db.records.recorder import Recorder
from inspect_db.reports.cli import report as report_cmd
from inspect_db.reports.html import render_html
from inspect_db.reports.query import build_report

# (latency, inspection, queue wait): a station's images behind one another, then two records
# without the split (before revision 0006, or `inspect predict`)
SPLIT = [(10.0, 10.0, 0.0), (30.0, 11.0, 19.0), (50.0, 12.0, 38.0), (70.0, 13.0, 57.0)]
UNSPLIT = [400.0, 500.0]


def timed(i: int, latency: float, inspect: float | None, queue: float | None):
    insp = make_inspection(i, latency=latency)
    insp.inspect_ms, insp.queue_ms = inspect, queue
    return insp


@pytest.fixture
def timed_db(db_url) -> str:
    with Recorder(db_url) as rec:
        for i, (lat, ins, q) in enumerate(SPLIT):
            assert rec.record(timed(i, lat, ins, q))
        for k, lat in enumerate(UNSPLIT):
            assert rec.record(timed(10 + k, lat, None, None))
    return db_url


def test_both_parts_are_recorded_and_a_record_without_them_keeps_nulls(timed_db):
    engine = make_engine(timed_db)
    with engine.connect() as c:
        rows = c.execute(
            sa.text("SELECT latency_ms, inspect_ms, queue_ms FROM inspection ORDER BY latency_ms")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == SPLIT + [(lat, None, None) for lat in UNSPLIT]


def test_the_report_shows_inspection_time_and_queue_wait_apart(timed_db):
    report = build_report(make_engine(timed_db))
    r = report.to_dict()
    assert r["latency_ms"]["count"] == 6 and r["latency_ms"]["max"] == 500.0
    ins, q = r["inspect_ms"], r["queue_ms"]
    assert ins["count"] == q["count"] == 4  # the records without the split are left out
    assert (ins["p50"], ins["mean"], ins["max"]) == (11.5, 11.5, 13.0)
    assert (q["p50"], q["mean"], q["max"]) == (28.5, 28.5, 57.0)
    assert q["p95"] == pytest.approx(57.0 - 0.15 * 19.0)  # interpolated as percentile_cont
    html = render_html(report)
    assert '<td class="l">inspection</td>' in html and "queue wait" in html


def test_cli_terminal_json_and_csv_carry_the_split(timed_db, tmp_path):
    runner = CliRunner()
    res = runner.invoke(report_cmd, ["--db", timed_db])
    assert res.exit_code == 0, res.output
    assert "Time per image (ms)" in res.stdout and "queue wait" in res.stdout
    res = runner.invoke(report_cmd, ["--db", timed_db, "--json"])
    data = json.loads(res.stdout)
    assert data["queue_ms"]["max"] == 57.0 and data["inspect_ms"]["count"] == 4
    out = tmp_path / "insp.csv"
    res = runner.invoke(report_cmd, ["--db", timed_db, "--csv", str(out)])
    assert res.exit_code == 0, res.output
    rows = {float(r["latency_ms"]): r for r in csv.DictReader(out.open(encoding="utf-8-sig"))}
    assert (rows[50.0]["inspect_ms"], rows[50.0]["queue_ms"]) == ("12.0", "38.0")
    assert rows[400.0]["inspect_ms"] == rows[400.0]["queue_ms"] == ""


def test_upgrade_to_0006_keeps_the_records_with_no_split(sqlite_url):
    engine = make_engine(sqlite_url)
    assert upgrade(engine, "0005") == (None, "0005")
    with engine.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO station (name, plugin, recipe, config_hash, created_at) "
                "VALUES ('line-1', 'industrial', 'steel', '', '2025-11-20 10:00:00')"
            )
        )
        c.execute(
            sa.text(
                "INSERT INTO inspection (station_id, plugin, recipe, source, image_sha256, "
                "width, height, inspected_at, inspected_hour, latency_ms, verdict, fired, "
                "thresholds, n_regions, defect_area_px) VALUES (1, 'industrial', 'steel', "
                "'x.png', :sha, 8, 8, '2025-11-20 10:00:00', 0, 42.0, 'PASS', '[]', '{}', 0, 0)"
            ),
            {"sha": "1" * 64},
        )
    assert upgrade(engine) == ("0005", head_revision())
    r = build_report(engine).to_dict()
    assert r["latency_ms"]["count"] == 1 and r["latency_ms"]["p50"] == 42.0
    assert r["inspect_ms"] == {"count": 0, "p50": None, "p95": None, "mean": None, "max": None}
    with Recorder(engine=engine) as rec:  # new records carry the split
        assert rec.record(timed(2, 20.0, 5.0, 15.0))
    assert build_report(engine).to_dict()["queue_ms"]["max"] == 15.0
    engine.dispose()


def test_downgrade_to_0005_drops_the_columns_and_keeps_records_and_regions(sqlite_url):
    from alembic import command
    from db_support import region

    from inspect_db.migrate import alembic_config

    engine = make_engine(sqlite_url)
    with Recorder(engine=engine) as rec:
        insp = timed(1, 20.0, 5.0, 15.0)
        insp.verdict.regions.append(region())
        assert rec.record(insp)
    with engine.begin() as c:
        cfg = alembic_config()
        cfg.attributes["connection"] = c
        command.downgrade(cfg, "0005")
    with engine.connect() as c:
        cols = {r[1] for r in c.execute(sa.text("PRAGMA table_info(inspection)"))}
        counts = [
            c.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("inspection", "region")
        ]
    engine.dispose()
    assert "latency_ms" in cols and not cols & {"inspect_ms", "queue_ms"}
    assert counts == [1, 1]
