"""``inspect report --format NAME``: the typed report in the built-in formats (terminal, JSON,
CSV, HTML from the autoescaped Jinja2 template) and in a format a plugin adds through the
``register_report_formats`` hook (as datasette's ``register_output_renderer``)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import types

import pytest
from click.testing import CliRunner
from db_support import make_inspection, region

from inspect_core.plugin_api import manager
from inspect_core.plugin_api.hookspecs import hookimpl
from inspect_db.records.recorder import Recorder
from inspect_db.reports.cli import report as report_cmd
from inspect_db.reports.formats import ReportFormat, report_formats
from inspect_db.reports.html import render_html
from inspect_db.reports.model import Report
from inspect_db.reports.query import build_report

HOSTILE = '<img src=x onerror="alert(1)">'


@pytest.fixture
def recorded(sqlite_url):
    with Recorder(sqlite_url) as rec:
        rec.record(make_inspection(1))
        for i in (2, 3):
            insp = make_inspection(i, verdict="FAIL", regions=[region("=dent", 40 + i)])
            rec.record(dataclasses.replace(insp, source=f"/in/{HOSTILE}{i}.png"))
    return sqlite_url


def invoke(*args: str):
    return CliRunner().invoke(report_cmd, list(args), env={"COLUMNS": "300"})


def test_format_json_is_the_json_option_and_the_typed_report(recorded):
    by_format = invoke("--db", recorded, "--format", "json")
    by_flag = invoke("--db", recorded, "--json")
    assert by_format.exit_code == by_flag.exit_code == 0, by_format.output
    data = json.loads(by_format.stdout)
    assert data.keys() == json.loads(by_flag.stdout).keys()
    assert data["total"] == 3 and data["verdicts"]["FAIL"] == 2 and "gallery" not in data
    assert data["pareto"][0]["class"] == "=dent" and data["stations"][0]["yield"] == 0.3333
    assert Report.model_validate(data).total == 3  # the JSON reads back as the typed report


def test_format_csv_writes_every_table_with_formulas_neutralised(recorded, tmp_path):
    out = tmp_path / "report.csv"
    res = invoke("--db", recorded, "--format", "csv", "--out", str(out))
    assert res.exit_code == 0, res.output
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    titles = [r[0] for i, r in enumerate(rows) if r and (i == 0 or not rows[i - 1])]
    assert titles[:4] == [
        "Verdicts",
        "Yield per station",
        "Defect Pareto by class",
        "Worst images (largest defect area)",
    ]
    assert ["'=dent", "2", "100.0%", "100.0%", "85"] in rows  # a class name is no formula


def test_format_html_escapes_recorded_text(recorded, tmp_path):
    out = tmp_path / "r.html"
    res = invoke("--db", recorded, "--format", "html", "--out", str(out), "--thumbnails", "5")
    assert res.exit_code == 0, res.output
    page = out.read_text(encoding="utf-8")
    assert HOSTILE not in page and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert page.count('<svg class="chart"') == 2 and page.count("overlay missing") == 0


def test_render_html_escapes_every_recorded_field(recorded):
    from inspect_db.engine import make_engine

    engine = make_engine(recorded)
    report = build_report(engine, gallery=5)
    engine.dispose()
    evil = report.model_copy(
        update={"database": HOSTILE, "review_url": 'http://h/"><script>x()</script>'}
    )
    page = render_html(evil)
    assert "<script>x()" not in page and HOSTILE not in page
    assert page.count("<script>") == 1  # the page's own, nothing from the records


# -- a plugin's format ----------------------------------------------------------------------
def _markdown(report: Report, out) -> None:
    out.write(f"# {report.total} inspections\n")
    for s in report.stations:
        out.write(f"- {s.station}: {s.FAIL} FAIL\n")


def _plugin() -> types.ModuleType:
    mod = types.ModuleType("markdown_report")

    @hookimpl
    def register_report_formats(register) -> None:
        register(ReportFormat("markdown", "a Markdown summary", _markdown))
        register(ReportFormat("json", "a second json, refused", _markdown))

    mod.register_report_formats = register_report_formats  # type: ignore[attr-defined]
    return mod


@pytest.fixture
def with_plugin(monkeypatch):
    reg = manager.load_plugins(extra=[("markdown_report", _plugin())])
    monkeypatch.setattr(manager, "_REGISTRY", reg)
    return reg


def test_a_plugin_adds_a_report_format(recorded, with_plugin, tmp_path):
    formats = report_formats(with_plugin)
    assert {"terminal", "json", "csv", "html", "markdown"} <= set(formats)
    assert formats["json"].description == "one JSON object"  # the records plugin's stays
    assert any("'json' is already registered" in f.reason for f in with_plugin.failures)
    res = invoke("--db", recorded, "--format", "markdown")
    assert res.exit_code == 0, res.output
    assert res.stdout == "# 3 inspections\n- line-1: 2 FAIL\n"
    out = tmp_path / "r.md"
    assert invoke("--db", recorded, "--format", "markdown", "--out", str(out)).exit_code == 0
    assert out.read_text() == res.stdout


def test_an_unknown_format_names_the_installed_ones(recorded, with_plugin):
    res = invoke("--db", recorded, "--format", "markdwn")
    assert res.exit_code == 2
    assert "did you mean 'markdown'?" in res.output and "html: a self-contained page" in res.output
    res = invoke("--db", recorded, "--out", "x.txt")
    assert res.exit_code == 2 and "--out goes with --format NAME" in res.output


def test_a_plugin_registering_something_else_fails_alone(with_plugin):
    mod = types.ModuleType("broken_report")

    @hookimpl
    def register_report_formats(register) -> None:
        register("not a format")

    mod.register_report_formats = register_report_formats  # type: ignore[attr-defined]
    reg = manager.load_plugins(extra=[("broken_report", mod)])
    assert "html" in report_formats(reg)
    assert any(f.plugin == "broken_report" and "ReportFormat" in f.reason for f in reg.failures)
