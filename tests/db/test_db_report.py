"""``inspect report``: the aggregate queries, filters, JSON, CSV and the terminal tables."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from click.testing import CliRunner
from db_support import make_inspection, region

from inspect_db.engine import make_engine
from inspect_db.errors import BadFilter, UnknownStation
from inspect_db.records.recorder import Recorder
from inspect_db.reports.cli import report as report_cmd
from inspect_db.reports.export import INSPECTION_FIELDS, REGION_FIELDS
from inspect_db.reports.filters import ReportFilters, parse_when
from inspect_db.reports.query import build_report

T0 = datetime(2025, 11, 20, 10, 0, tzinfo=UTC)


def ts(dt: datetime) -> float:
    return dt.timestamp()


LINE1 = ["PASS"] * 6 + ["REVIEW", "REVIEW", "FAIL", "ERROR"]
LATENCIES = [float(i * i % 17 + 1) for i in range(15)]


def fill(url: str) -> None:
    """15 inspections at two stations, with a known answer for every section."""
    with Recorder(url) as rec:
        for i, v in enumerate(LINE1):
            regs = {
                0: [region("dent", 3)],
                6: [region("dent", 20)],
                7: [region("dent", 20)],
                8: [region("scratch", 100), region("scratch", 50)],
            }.get(i, [])
            rec.record(
                make_inspection(
                    i,
                    station="line-1",
                    verdict=v,
                    regions=regs,
                    at=ts(T0 + timedelta(minutes=10 * i)),
                    latency=LATENCIES[i],
                )
            )
        for k, v in enumerate(["PASS", "PASS", "PASS", "FAIL", "FAIL"]):
            regs = {
                3: [region("crack", 300, 3)],
                4: [region("crack", 10, 3), region("scratch", 5)],
            }.get(k, [])
            rec.record(
                make_inspection(
                    100 + k,
                    station="line-2",
                    verdict=v,
                    regions=regs,
                    plugin="aerial",
                    recipe="roofs",
                    at=ts(T0 + timedelta(days=1, minutes=5 * k)),
                    latency=LATENCIES[10 + k],
                )
            )


@pytest.fixture
def filled(db_url) -> str:
    fill(db_url)
    return db_url


def report(url: str, **filters):
    engine = make_engine(url)
    try:
        return build_report(engine, ReportFilters.parse(**filters), gallery=5).to_dict()
    finally:
        engine.dispose()


def test_report_sections(filled):
    r = report(filled)
    assert r["total"] == 15
    assert r["verdicts"] == {"PASS": 9, "REVIEW": 2, "FAIL": 3, "ERROR": 1}
    assert r["yield"] == pytest.approx(9 / 15, abs=1e-4)
    st = {s["station"]: s for s in r["stations"]}
    assert st["line-1"]["total"] == 10 and st["line-1"]["yield"] == 0.6
    assert (st["line-1"]["REVIEW"], st["line-1"]["FAIL"], st["line-1"]["ERROR"]) == (2, 1, 1)
    assert (st["line-2"]["plugin"], st["line-2"]["recipe"], st["line-2"]["yield"]) == (
        "aerial",
        "roofs",
        0.6,
    )
    assert [(p["class"], p["regions"]) for p in r["pareto"]] == [
        ("dent", 3),
        ("scratch", 3),
        ("crack", 2),
    ]
    assert [p["cumulative"] for p in r["pareto"]] == [round(3 / 8, 4), round(6 / 8, 4), 1.0]
    assert r["pareto"][1]["area_px"] == 155
    assert [w["defect_area_px"] for w in r["worst"]] == [300, 150, 20, 20, 15, 3]
    assert r["worst"][0]["source"].endswith("00103.png") and r["worst"][0]["station"] == "line-2"
    lat = r["latency_ms"]
    assert lat["count"] == 15
    assert lat["p50"] == pytest.approx(np.percentile(LATENCIES, 50), abs=1e-3)
    assert lat["p95"] == pytest.approx(np.percentile(LATENCIES, 95), abs=1e-3)
    assert lat["mean"] == pytest.approx(np.mean(LATENCIES), abs=1e-3)
    assert lat["max"] == max(LATENCIES)
    tl = r["timeline"]
    assert tl["bucket"] == "hour"
    counted = [(b["start"], b["total"], b["PASS"]) for b in tl["rows"] if b["total"]]
    assert counted == [
        ("2025-11-20T10:00:00Z", 6, 6),
        ("2025-11-20T11:00:00Z", 4, 0),
        ("2025-11-21T10:00:00Z", 5, 3),
    ]
    # every hour from the first to the last is a row: the 22 hours without a record are zeros
    assert len(tl["rows"]) == 25 and tl["rows"][2]["start"] == "2025-11-20T12:00:00Z"
    assert tl["rows"][2]["total"] == 0 and tl["rows"][2]["yield"] is None
    # no overlays recorded: the FAIL and REVIEW images are still there, to be drawn from their
    # recorded regions
    assert r["gallery"] and all(g["overlay_path"] is None for g in r["gallery"])
    assert {g["verdict"] for g in r["gallery"]} <= {"FAIL", "REVIEW"}
    json.dumps(r)  # plain data


def test_days_and_filters(filled):
    r = report(filled, since="2025-11-20T10:30:00Z", until="2025-11-20T11:00:00")
    assert r["total"] == 3 and r["verdicts"]["PASS"] == 3
    assert r["latency_ms"]["p50"] == np.median(LATENCIES[3:6])
    r = report(filled, station="line-2")
    assert r["total"] == 5 and [s["station"] for s in r["stations"]] == ["line-2"]
    assert [(p["class"], p["regions"]) for p in r["pareto"]] == [("crack", 2), ("scratch", 1)]
    assert report(filled, plugin="aerial")["total"] == 5
    assert report(filled, plugin="aerial", recipe="steel")["total"] == 0
    r = report(filled, verdict="fail,review")
    assert r["total"] == 5 and r["verdicts"]["PASS"] == 0
    assert [(p["class"], p["regions"]) for p in r["pareto"]] == [
        ("scratch", 3),
        ("crack", 2),
        ("dent", 2),
    ]
    r = report(filled, plugin="industrial")  # the Pareto through the join path
    assert [(p["class"], p["regions"]) for p in r["pareto"]] == [("dent", 3), ("scratch", 2)]
    engine = make_engine(filled)
    days = build_report(engine, ReportFilters(), bucket="day").to_dict()["timeline"]["rows"]
    engine.dispose()
    assert [(d["start"], d["total"]) for d in days] == [
        ("2025-11-20T00:00:00Z", 10),
        ("2025-11-21T00:00:00Z", 5),
    ]


def test_empty_database_gives_an_empty_report(db_url):
    r = report(db_url, since="7d")
    assert r["total"] == 0 and r["stations"] == [] and r["pareto"] == [] and r["worst"] == []
    assert r["latency_ms"]["p50"] is None and r["timeline"]["rows"] == []


def test_a_station_that_changed_recipe_has_a_yield_row_per_recipe(db_url):
    """Counts go with the recipe recorded on each inspection, not the station's latest: the
    steel images' yield is not shown under the tile recipe the station was switched to."""
    at = [ts(T0), ts(T0 + timedelta(minutes=20)), ts(T0 + timedelta(hours=3))]
    with Recorder(db_url) as rec:
        for i, v in enumerate(["PASS", "PASS", "FAIL", "PASS"]):  # the first hour: steel ...
            rec.record(make_inspection(i, station="line-9", verdict=v, recipe="steel", at=at[0]))
        # ... then tile, in the same hour (a group of two recipes) and hours later (of one)
        rec.record(make_inspection(50, station="line-9", verdict="FAIL", recipe="tile", at=at[1]))
        rec.record(make_inspection(51, station="line-9", verdict="FAIL", recipe="tile", at=at[2]))
        rec.record(make_inspection(52, station="line-9", verdict="PASS", recipe="tile", at=at[2]))
    rows = [(s["station"], s["recipe"], s["total"], s["yield"]) for s in report(db_url)["stations"]]
    assert rows == [("line-9", "steel", 4, 0.75), ("line-9", "tile", 3, 0.3333)]


def test_unknown_station_names_the_known_ones(filled):
    with pytest.raises(UnknownStation) as e:
        report(filled, station="line-9")
    assert "line-9" in str(e.value) and "line-1, line-2" in str(e.value)


def test_a_plugin_or_recipe_nothing_was_recorded_for_names_the_recorded_ones(filled):
    with pytest.raises(BadFilter) as e:
        report(filled, recipe="Steel")  # a typo would otherwise report an empty, quiet line
    assert "'Steel'" in str(e.value) and "roofs, steel" in str(e.value)
    with pytest.raises(BadFilter, match="recorded: aerial, industrial"):
        report(filled, plugin="robotic")


def test_parse_when():
    now = datetime(2025, 11, 24, 12, 0)
    assert parse_when("24h", now) == datetime(2025, 11, 23, 12, 0)
    assert parse_when("7d", now) == datetime(2025, 11, 17, 12, 0)
    assert parse_when("30m", now) == datetime(2025, 11, 24, 11, 30)
    assert parse_when("30min", now) == datetime(2025, 11, 24, 11, 30)
    with pytest.raises(BadFilter, match="minutes or months"):  # 1M: a month to some
        parse_when("1M", now)
    assert parse_when("2w", now) == datetime(2025, 11, 10, 12, 0)
    assert parse_when("2025-11-01", now) == datetime(2025, 11, 1)
    assert parse_when("2025-11-01T08:00:00+01:00", now) == datetime(2025, 11, 1, 7, 0)
    for bad in ("yesterday", "24x", "", "2025-13-01"):
        with pytest.raises(BadFilter, match="24h, 7d"):
            parse_when(bad, now)
    with pytest.raises(BadFilter, match="not before --until"):
        ReportFilters.parse(since="1h", until="2h")
    with pytest.raises(BadFilter, match="PASS, REVIEW, FAIL, ERROR"):
        ReportFilters.parse(verdict="FAIL,BROKEN")


def test_cli_json_csv_and_terminal(filled, tmp_path):
    runner = CliRunner()
    res = runner.invoke(report_cmd, ["--db", filled, "--json", "--station", "line-1"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["total"] == 10 and data["filters"]["station"] == "line-1"
    assert set(data) >= {"verdicts", "stations", "pareto", "worst", "latency_ms", "timeline"}

    out = tmp_path / "insp.csv"
    res = runner.invoke(report_cmd, ["--db", filled, "--csv", str(out), "--verdict", "FAIL"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert len(rows) == 3 and tuple(rows[0]) == INSPECTION_FIELDS
    assert {r["verdict"] for r in rows} == {"FAIL"} and rows[0]["fired"] == "min_area"
    assert rows[0]["model_sha256"] == "ab" * 32
    assert "Defect Pareto by class" in res.stdout and "Yield per station" in res.stdout

    res = runner.invoke(report_cmd, ["--db", filled, "--csv", str(out), "--regions"])
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert res.exit_code == 0 and len(rows) == 8 and tuple(rows[0]) == REGION_FIELDS
    assert sorted(int(r["area_px"]) for r in rows) == [3, 5, 10, 20, 20, 50, 100, 300]


def test_cli_rejects_bad_options(filled):
    res = CliRunner().invoke(report_cmd, ["--db", filled, "--regions"])
    assert res.exit_code == 2 and "--regions goes with --csv" in res.output
    res = CliRunner().invoke(report_cmd, ["--db", filled, "--since", "last tuesday"])
    assert isinstance(res.exception, BadFilter)
    for opt in ("--top", "--thumbnails"):  # -1 would be SQLite's LIMIT -1: no limit at all
        res = CliRunner().invoke(report_cmd, ["--db", filled, opt, "-1"])
        assert res.exit_code == 2 and opt in res.output


def test_long_ranges_are_counted_per_day_in_sql(db_url):
    days = [0, 0, 1, 99, 150]  # 150 days: groups by day in SQL rather than by hour
    with Recorder(db_url) as rec:
        for i, d in enumerate(days):
            rec.record(
                make_inspection(
                    i, verdict="PASS" if i % 2 else "FAIL", at=ts(T0 + timedelta(days=d, hours=i))
                )
            )
    r = report(db_url)
    assert r["timeline"]["bucket"] == "day"
    rows = r["timeline"]["rows"]
    assert len(rows) == 151  # every day from the first record to the last, empty ones as 0
    assert [(b["start"][:10], b["total"], b["PASS"]) for b in rows if b["total"]] == [
        ("2025-11-20", 2, 1),
        ("2025-11-21", 1, 0),
        ("2026-02-27", 1, 1),
        ("2026-04-19", 1, 0),
    ]


def test_cli_output_files_it_cannot_write_are_clear_errors(filled, tmp_path):
    from inspect_db.errors import RecordsError

    missing = tmp_path / "no" / "such" / "folder"
    for opt in ("--csv", "--html"):
        res = CliRunner().invoke(report_cmd, ["--db", filled, opt, str(missing / "out")])
        assert isinstance(res.exception, RecordsError), (opt, res.exception)
        assert "cannot write" in str(res.exception) and str(missing) in str(res.exception)


def test_pareto_filtered_by_plugin_and_recipe_reads_the_region_copies(filled):
    """plugin/recipe live on each region since revision 0002: the Pareto filters them there
    (no join), and agrees with the per-inspection counts."""
    r = report(filled, plugin="aerial", recipe="roofs")
    assert r["total"] == 5
    assert [(p["class"], p["regions"], p["area_px"]) for p in r["pareto"]] == [
        ("crack", 2, 310),
        ("scratch", 1, 5),
    ]
    assert report(filled, recipe="roofs")["pareto"] == r["pareto"]
    assert report(filled, plugin="industrial", verdict="FAIL")["pareto"] == [
        {"class": "scratch", "regions": 2, "area_px": 150, "share": 1.0, "cumulative": 1.0}
    ]


def test_filtered_pareto_reads_one_covering_index_on_sqlite(tmp_path):
    """The plan that keeps `inspect report --plugin P --recipe R` fast on millions of regions:
    no join, no table read, only ix_region_pareto (bench/README.md)."""
    import sqlalchemy as sa

    from inspect_db.engine import connect
    from inspect_db.reports.filters import R, conditions

    url = f"sqlite:///{tmp_path / 'plan.db'}"
    fill(url)
    engine = make_engine(url)
    with connect(engine) as c:
        for flt in ({"plugin": "aerial", "recipe": "roofs"}, {"recipe": "roofs", "since": "7d"}):
            w = conditions(c, ReportFilters.parse(**flt))
            q = (
                sa.select(R.c.class_name, sa.func.count(), sa.func.sum(R.c.area_px))
                .where(*w.region)
                .group_by(R.c.class_name)
            )
            sql = str(q.compile(dialect=c.dialect, compile_kwargs={"literal_binds": True}))
            plan = [row[3] for row in c.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
            assert plan == ["SCAN region USING COVERING INDEX ix_region_pareto"], plan
    engine.dispose()


def test_the_counts_stream_over_their_covering_index_without_a_sort_on_sqlite(tmp_path):
    """Yield per station and recipe must not sort every row of the window (bench/README.md:
    1,000,000 inspections under 2 s): the recipe comes from min/max aggregates."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'plan.db'}"
    fill(url)
    engine = make_engine(url)
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda c, cur, sql, *a: seen.append(sql))
    build_report(engine, ReportFilters.parse())
    (summary,) = [q for q in seen if "min(inspection.recipe)" in q]
    with engine.connect() as c:
        plan = [row[3] for row in c.exec_driver_sql("EXPLAIN QUERY PLAN " + summary)]
    assert not [p for p in plan if "TEMP B-TREE" in p], plan
    assert any("ix_inspection_hour_cover" in p for p in plan), plan
    engine.dispose()
