"""``inspect report``: the section per model version (images, verdict shares and latency of
each model the inspections name, ``recipe@label`` and short sha256), in JSON, the terminal,
CSV and HTML; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from db_support import make_inspection
from rich.console import Console

from inspect_db.engine import make_engine
from inspect_db.migrate import ensure_schema
from inspect_db.records.recorder import Recorder
from inspect_db.registry.versions import add_version
from inspect_db.reports.cli import report as report_cmd
from inspect_db.reports.filters import ReportFilters
from inspect_db.reports.html import render_html
from inspect_db.reports.query import build_report
from inspect_db.reports.terminal import render_terminal

V1, V2 = "a1" * 32, "b2" * 32
HOSTILE = '<b onmouseover="x()">\x1b[31m.onnx'


@pytest.fixture
def engine(db_url, tmp_path):
    """steel@v1 (registered): 4 images (2 PASS, 1 FAIL, 1 REVIEW), latency 10..40 ms; V2 (not
    registered, its card names a hostile file): 2 images (FAIL, ERROR), 100 and 300 ms; one
    image without a model."""
    engine = make_engine(db_url)
    ensure_schema(engine)
    add_version(
        engine,
        plugin="industrial",
        recipe="steel",
        sha256=V1,
        path=tmp_path / "v1.onnx",
        card={"sha256": V1},
        origin="trained",
        by="eng",
    )
    plan = [
        (1, V1, "PASS", 10.0),
        (2, V1, "PASS", 20.0),
        (3, V1, "FAIL", 30.0),
        (4, V1, "REVIEW", 40.0),
        (5, V2, "FAIL", 100.0),
        (6, V2, "ERROR", 300.0),
        (7, None, "PASS", 5.0),
    ]
    with Recorder(engine=engine) as rec:
        for i, model, verdict, ms in plan:
            insp = make_inspection(i, verdict=verdict, latency=ms, model=model)
            rec.record(insp, model_card={"sha256": V2, "model": HOSTILE} if model == V2 else None)
    yield engine
    engine.dispose()


def test_images_verdict_shares_and_latency_per_version(engine):
    rows = build_report(engine, ReportFilters()).to_dict()["model_versions"]
    assert [r["model"] for r in rows] == ["steel@v1", f"{HOSTILE}@{V2[:12]}", "(no model)"]
    v1, v2, none = rows
    assert v1["sha256"] == V1 and v1["version"] == "v1" and v1["registered"] is True
    assert v1["images"] == 4 and v1["verdicts"] == {"PASS": 2, "REVIEW": 1, "FAIL": 1, "ERROR": 0}
    assert v1["shares"] == {"PASS": 0.5, "REVIEW": 0.25, "FAIL": 0.25, "ERROR": 0.0}
    assert v1["latency_ms"] == {"mean": 25.0, "max": 40.0}
    assert v2["version"] is None and v2["registered"] is False and v2["sha256"] == V2
    assert v2["shares"]["ERROR"] == 0.5 and v2["latency_ms"] == {"mean": 200.0, "max": 300.0}
    assert none["sha256"] is None and none["images"] == 1
    only_fail = build_report(engine, ReportFilters.parse(verdict="FAIL")).model_versions
    assert [(r.model, r.images) for r in only_fail] == [("steel@v1", 1), (rows[1]["model"], 1)]


def test_json_csv_terminal_and_html(engine):
    url = engine.url.render_as_string(hide_password=False)
    res = CliRunner().invoke(report_cmd, ["--db", url, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["model_versions"][0]["model"] == "steel@v1"
    res = CliRunner().invoke(report_cmd, ["--db", url, "--format", "csv"])
    rows = list(csv.reader(io.StringIO(res.stdout)))
    k = rows.index(["Verdicts by model version"])
    assert rows[k + 1] == ["model version", "sha256", "images", "PASS", "REVIEW", "FAIL", "ERROR"]
    assert rows[k + 2] == ["steel@v1", V1[:12], "4", "50.0%", "25.0%", "25.0%", "0.0%"]
    k = rows.index(["Latency by model version (ms)"])
    assert rows[k + 2 : k + 4] == [
        ["steel@v1", "4", "25.0", "40.0"],
        [rows[k + 3][0], "2", "200.0", "300.0"],
    ]
    report = build_report(engine, ReportFilters())
    con = Console(record=True, width=80, file=io.StringIO())
    render_terminal(report, con)
    text = con.export_text()
    assert "Verdicts by model version" in text and "Latency by model version" in text
    assert "\x1b" not in text and "\\x1b[31m" in text  # the escape shown, never run
    page = render_html(report)
    assert '<section id="model-versions"><h2>By model version</h2>' in page
    assert '<td class="l">a1a1a1a1a1a1</td>' in page and "<b onmouseover" not in page
    assert "&lt;b onmouseover=&#34;x()&#34;&gt;" in page
