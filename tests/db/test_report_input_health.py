"""``inspect report``: input health per station and day (``input_health``, issue 25 item 4):
images measured, flagged for quality and unfamiliar with their shares, the familiarity
distribution in tenths with its median and 10th percentile, and mean focus and gray level
against the station's first day; from inspections recorded through the Recorder with their
InputHealth, on SQLite and PostgreSQL; in the terminal at 80 columns, JSON, CSV and HTML."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import subprocess
from datetime import UTC, datetime

import pytest
from chromium_kit import APT_HINT, find_chromium
from click.testing import CliRunner
from db_support import make_inspection
from rich.cells import cell_len
from rich.console import Console

from inspect_core.text import terminal_text
from inspect_core.types import InputHealth, QualityFigures, QualityProblem
from inspect_db.engine import make_engine
from inspect_db.records.recorder import Recorder
from inspect_db.reports.cli import report as report_cmd
from inspect_db.reports.filters import ReportFilters
from inspect_db.reports.html import render_html
from inspect_db.reports.input_health import quantile
from inspect_db.reports.layout import FLAGGED
from inspect_db.reports.query import build_report
from inspect_db.reports.terminal import render_terminal

HOSTILE = '<img src=x onerror="alert(1)">\x1b[31m-press-line-with-a-long-name'
DAY0 = datetime(2026, 12, 1, 8, tzinfo=UTC).timestamp()
DAY1 = datetime(2026, 12, 2, 9, tzinfo=UTC).timestamp()
BLUR = QualityProblem("focus", 0.1, "min", 0.15, "out of focus")


def _health(focus: float, level: float, fam: float | None, *, unfamiliar=False, blurred=False):
    figures = QualityFigures(focus, 0.0, 0.0, level, 200.0, 40.0)
    return InputHealth(
        quality=figures,
        problems=(BLUR,) if blurred else (),
        familiarity=fam,
        unfamiliar=None if fam is None else unfamiliar,
    )


def _plan():
    """(i, station, at, health): station a on two days, the hostile station on one."""
    day0 = [  # one image in each tenth of familiarity, the lowest unfamiliar, one blurred
        (
            k,
            "a",
            DAY0 + 60 * k,
            _health(0.8, 120.0, k / 10 + 0.05, unfamiliar=k == 0, blurred=k == 5),
        )
        for k in range(10)
    ]
    day1 = [
        (20, "a", DAY1, _health(0.6, 100.0, 0.02, unfamiliar=True)),
        (21, "a", DAY1 + 60, _health(0.6, 100.0, 0.03, unfamiliar=True)),
        (22, "a", DAY1 + 120, _health(0.6, 100.0, 0.04)),
        (23, "a", DAY1 + 180, _health(0.6, 100.0, 0.35)),
        (24, "a", DAY1 + 240, _health(0.6, 100.0, None, blurred=True)),  # no familiarity
        (25, "a", DAY1 + 300, None),  # not measured
    ]
    hostile = [(30, HOSTILE, DAY1, _health(0.9, 90.0, 0.95))]
    return day0 + day1 + hostile


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    with Recorder(engine=engine) as rec:
        for i, station, at, health in _plan():
            insp = make_inspection(i, station=station, at=at)
            rec.record(dataclasses.replace(insp, health=health))
    yield engine
    engine.dispose()


def _terminal(report, width: int) -> str:
    con = Console(record=True, width=width, file=io.StringIO())
    render_terminal(report, con)
    return con.export_text()


def _rows_of(text: str, title: str) -> list[list[str]]:
    """The cells of the body rows of the table under ``title``: a row whose text wraps takes
    several lines, the later ones with no number (numbers never wrap), joined back here."""
    lines = text.splitlines()
    start = next(k for k, ln in enumerate(lines) if title in ln)
    head = next(k for k in range(start, len(lines)) if lines[k].startswith("┡"))
    rows: list[list[str]] = []
    for ln in lines[head + 1 :]:
        if ln.startswith("└"):
            break
        if ln.startswith("├"):
            continue
        cells = [c.strip() for c in ln.strip("│").split("│")]
        if rows and not cells[-1]:
            rows[-1] = [a + b for a, b in zip(rows[-1], cells)]
        else:
            rows.append(cells)
    return rows


def test_counts_shares_and_distribution_per_station_and_day(engine):
    h = build_report(engine, ReportFilters()).input_health
    assert h is not None and (h.reference_median, h.reference_p10) == (0.5, 0.1)
    assert [(d.station, d.day) for d in h.days] == [
        (HOSTILE, "2026-12-02"),  # '<' sorts before 'a'
        ("a", "2026-12-01"),
        ("a", "2026-12-02"),
    ]
    _, a0, a1 = h.days
    assert (a0.measured, a0.quality, a0.unfamiliar) == (10, 1, 1)
    assert (a0.quality_share, a0.unfamiliar_share) == (0.1, 0.1)
    # evenly spread, like the training images: the reference exactly
    assert a0.familiarity.bins == [1] * 10
    assert (a0.familiarity.count, a0.familiarity.median, a0.familiarity.p10) == (10, 0.5, 0.1)
    assert (a0.focus_mean, a0.focus_change, a0.level_mean, a0.level_change) == (
        0.8,
        0.0,
        120.0,
        0.0,
    )
    # the unmeasured image is left out; the one without familiarity counts as measured
    assert (a1.measured, a1.quality, a1.unfamiliar) == (5, 1, 2)
    assert (a1.quality_share, a1.unfamiliar_share) == (0.2, 0.4)
    assert a1.familiarity.bins == [3, 0, 0, 1, 0, 0, 0, 0, 0, 0] and a1.familiarity.count == 4
    assert (a1.familiarity.median, a1.familiarity.p10) == (0.0667, 0.0133)
    assert (a1.focus_mean, a1.focus_change) == (0.6, -0.25)
    assert (a1.level_mean, a1.level_change) == (100.0, -20.0)


def test_the_filters_select_the_days(engine):
    h = build_report(engine, ReportFilters.parse(station="a", since="2026-12-02")).input_health
    assert h is not None and [(d.day, d.measured) for d in h.days] == [("2026-12-02", 5)]
    assert h.days[0].focus_change == 0.0  # the first day of the report is the reference


def test_quantile_interpolates_within_its_bin():
    assert quantile([0] * 10, 0.5) is None
    assert quantile([0, 0, 4, 0, 0, 0, 0, 0, 0, 0], 0.5) == 0.25
    assert quantile([0] * 9 + [2], 0.1) == 0.91
    assert quantile([1] * 10, 1.0) == 1.0


def test_terminal_at_80_columns(engine):
    text = _terminal(build_report(engine, ReportFilters()), 80)
    assert all(cell_len(ln) <= 80 for ln in text.splitlines())
    assert "\x1b" not in text
    rows = _rows_of(text, "Input health per station and day")
    assert rows[1] == ["a", "2026-12-01", "10", "1 (10.0%)", "1 (10.0%)"]
    assert rows[2] == ["a", "2026-12-02", "5", "1 (20.0%)", "2 (40.0%)"]
    # whole (wrapped at its space, never cut), printed literally
    assert rows[0][0].replace(" ", "") == terminal_text(HOSTILE).replace(" ", "")
    assert rows[0][2:] == ["1", "0 (0.0%)", "0 (0.0%)"]
    drift = _rows_of(text, "Familiarity and image figures")
    assert drift[1] == ["a", "2026-12-01", "0.50", "0.10", "0.8 (+0%)", "120 (+0.0)"]
    assert drift[2] == ["a", "2026-12-02", "0.07", "0.01", "0.6 (-25%)", "100 (-20.0)"]
    assert FLAGGED in [ln.strip() for ln in text.splitlines()]  # the explanation, one line


def test_json_csv_and_html(engine):
    url = engine.url.render_as_string(hide_password=False)
    res = CliRunner().invoke(report_cmd, ["--db", url, "--json"])
    assert res.exit_code == 0, res.output
    days = json.loads(res.stdout)["input_health"]["days"]
    assert days[2] == {
        "station": "a",
        "day": "2026-12-02",
        "measured": 5,
        "quality": 1,
        "unfamiliar": 2,
        "quality_share": 0.2,
        "unfamiliar_share": 0.4,
        "familiarity": {
            "count": 4,
            "median": 0.0667,
            "p10": 0.0133,
            "bins": [3, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        },
        "focus_mean": 0.6,
        "focus_change": -0.25,
        "level_mean": 100.0,
        "level_change": -20.0,
    }
    assert days[0]["station"] == HOSTILE
    res = CliRunner().invoke(report_cmd, ["--db", url, "--format", "csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.reader(io.StringIO(res.stdout)))
    k = rows.index(["Input health per station and day"])
    assert rows[k + 1] == ["station", "day (UTC)", "measured", "quality", "unfamiliar"]
    assert rows[k + 2][0] == HOSTILE  # whole in the CSV
    html = render_html(build_report(engine, ReportFilters()))
    assert "<h2>Input health per station and day</h2>" in html
    assert "<h2>Familiarity and image figures per station and day</h2>" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=" in html
    assert f'<p class="muted">{FLAGGED}</p>' in html
    assert "<td>2 (40.0%)</td>" in html


def test_no_health_recorded_shows_no_section(db_url):
    engine = make_engine(db_url)
    with Recorder(engine=engine) as rec:
        rec.record(make_inspection(1, station="a", at=DAY0))
    report = build_report(engine, ReportFilters())
    engine.dispose()
    assert report.input_health is None
    assert "input_health" not in report.to_dict()
    assert "Input health" not in _terminal(report, 80)
    assert "Input health" not in render_html(report)


def test_the_html_tables_render_in_headless_chromium(engine, tmp_path):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(f"Chromium not found (or set $INSPECT_CHROMIUM); {APT_HINT}")
    page = tmp_path / "report.html"
    page.write_text(render_html(build_report(engine, ReportFilters())), encoding="utf-8")
    base = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
    ]
    res = subprocess.run(
        [*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=90
    )
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    assert 'data-status="ready"' in dom
    part = dom[dom.index("Input health per station and day") :]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", part)
    assert cells[0].startswith("&lt;img src=x") and cells[5:10] == [
        "a",
        "2026-12-01",
        "10",
        "1 (10.0%)",
        "1 (10.0%)",
    ]
    assert "<img src=x" not in dom
