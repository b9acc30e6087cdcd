"""``inspect report``: how often operators corrected each model version (``review.corrections``):
inspections, reviewed, corrected (verdict changed, a region relabelled, a defect drawn) and the
shares, from decisions recorded through the review storage; in the terminal at 80 columns, as
JSON, CSV and HTML. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess

import pytest
from chromium_kit import APT_HINT, find_chromium
from click.testing import CliRunner
from db_support import make_inspection, region
from rich.cells import cell_len
from rich.console import Console

from inspect_db.engine import connect, make_engine
from inspect_db.migrate import ensure_schema
from inspect_db.records.recorder import Recorder
from inspect_db.registry.versions import add_version
from inspect_db.reports.cli import report as report_cmd
from inspect_db.reports.filters import ReportFilters
from inspect_db.reports.html import render_html
from inspect_db.reports.layout import CORRECTED
from inspect_db.reports.query import build_report
from inspect_db.reports.terminal import render_terminal
from inspect_db.tables import I
from inspect_review.storage.queue import item
from inspect_review.storage.store import add_user, record_decision
from inspect_review.storage.types import DecisionIn, Mark, RegionLabel

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
V1, V2 = "a1" * 32, "b2" * 32
HOSTILE_FILE = '<img src=x onerror="alert(1)">\x1b[31m.onnx'
V2_NAME = f"{HOSTILE_FILE}@{V2[:12]}"
SQUARE = ((10.0, 10.0), (60.0, 10.0), (60.0, 60.0), (10.0, 60.0))


class Line:
    """A database of two model versions' inspections and the operators' decisions on them."""

    def __init__(self, engine, user_id: int):
        self.engine, self.user_id = engine, user_id

    def id_of(self, i: int) -> int:
        with connect(self.engine) as conn:
            q = I.select().with_only_columns(I.c.id).where(I.c.image_sha256 == f"{i:064x}")
            return int(conn.execute(q).scalar_one())

    def decide(self, i: int, verdict: str, *labels, marks=(), again: bool = False) -> int:
        """Decide inspection ``i``: ``labels`` as (label, class) per region in order; a
        mark's ``replaces_region_id`` given as a region number (1-based)."""
        iid = self.id_of(i)
        with connect(self.engine) as conn:
            view = item(conn, iid)
        regs = view.regions
        given = tuple(RegionLabel(r.id, lab, cls) for r, (lab, cls) in zip(regs, labels))
        marks = tuple(
            m if m.replaces_region_id is None else _replacing(m, regs[m.replaces_region_id - 1].id)
            for m in marks
        )
        seen = view.latest.id if again and view.latest else None
        d = DecisionIn(iid, self.user_id, verdict, given, "", seen, marks)
        return record_decision(self.engine, d)


def _replacing(m: Mark, region_id: int) -> Mark:
    return Mark(m.kind, m.points, m.label, m.class_name, m.class_id, m.width, region_id)


def _record(engine, plan) -> None:
    with Recorder(engine=engine) as rec:
        for i, station, model, verdict, classes in plan:
            regs = [
                region(c, 30, 1 if c == "scratch" else 2, x=5 + 20 * k)
                for k, c in enumerate(classes)
            ]
            insp = make_inspection(i, station=station, verdict=verdict, regions=regs, model=model)
            card = (
                {"sha256": V2, "model": HOSTILE_FILE, "version": "2026-11"} if model == V2 else None
            )
            rec.record(insp, model_card=card)


@pytest.fixture
def line(db_url, tmp_path):
    """steel@v1 (registered): 12 inspections, 10 decided, 6 corrected (verdict 3, regions 2,
    drawn 3); V2 (not registered, its card names a hostile file): 4 inspections, 2 decided,
    1 corrected (verdict and regions); one inspection without a model."""
    engine = make_engine(db_url)
    ensure_schema(engine)
    add_version(
        engine,
        plugin="industrial",
        recipe="steel",
        sha256=V1,
        path=tmp_path / "v1.onnx",
        card={"sha256": V1, "model": "model.onnx"},
        origin="trained",
        by="eng",
    )
    plan = [  # i, station, model, model verdict, region classes
        (1, "a", V1, "FAIL", ["scratch", "dent"]),
        (2, "a", V1, "FAIL", ["scratch"]),
        (3, "a", V1, "REVIEW", ["dent"]),
        (4, "a", V1, "FAIL", ["scratch"]),
        (5, "a", V1, "PASS", []),
        (6, "a", V1, "FAIL", ["scratch"]),
        (7, "a", V1, "FAIL", ["scratch"]),
        (8, "a", V1, "FAIL", ["scratch"]),  # pending
        (9, "a", V1, "PASS", []),  # not reviewed
        (10, "a", V1, "FAIL", ["dent"]),
        (11, "a", V1, "FAIL", ["scratch"]),
        (12, "a", V1, "FAIL", ["scratch"]),
        (20, "b", V2, "FAIL", ["scratch"]),
        (21, "b", V2, "REVIEW", ["scratch"]),
        (22, "b", V2, "FAIL", ["scratch"]),  # pending
        (23, "b", V2, "PASS", []),  # not reviewed
        (30, "b", "", "PASS", []),  # no model
    ]
    _record(engine, plan)
    ln = Line(engine, add_user(engine, "olga", "operator", HASH).id)
    scratch, dent = ("defect", "scratch"), ("defect", "dent")
    ln.decide(1, "FAIL", scratch, dent)  # confirmed with its regions: not corrected
    ln.decide(2, "PASS", ("not_defect", None))  # verdict + regions
    ln.decide(3, "FAIL", dent)  # a decided REVIEW: verdict
    ln.decide(4, "FAIL", ("defect", "crack"))  # renamed class: regions
    missed = Mark("polygon", SQUARE, "defect", "crack")
    ln.decide(5, "FAIL", marks=(missed,))  # verdict + drawn
    ln.decide(6, "FAIL", scratch, marks=(missed,))  # a missed region: drawn
    outline = Mark("polygon", SQUARE, "defect", "scratch", 1, replaces_region_id=1)
    ln.decide(7, "FAIL", scratch, marks=(outline,))  # an outline corrected: drawn
    ln.decide(10, "PASS", ("not_defect", None))
    ln.decide(10, "FAIL", dent, again=True)  # changed mind: only this (confirmed) counts
    ln.decide(11, "FAIL", ("unsure", None))  # unsure: no correction
    stroke = Mark("stroke", ((5.0, 5.0), (90.0, 40.0)), "not_defect", width=4.0)
    ln.decide(12, "FAIL", scratch, marks=(stroke,))  # drew something, not a defect
    ln.decide(20, "FAIL", ("defect", "scratch"))  # confirmed
    ln.decide(21, "PASS", ("not_defect", None))  # verdict + regions
    yield engine
    engine.dispose()


V1_ROW = {
    "model": "steel@v1",
    "sha256": V1,
    "plugin": "industrial",
    "recipe": "steel",
    "version": "v1",
    "registered": True,
    "inspections": 12,
    "reviewed": 10,
    "corrected": 6,
    "share_of_inspections": 0.5,
    "share_of_reviewed": 0.6,
    "reasons": {"verdict": 3, "regions": 2, "drawn": 3},
}
V2_ROW = {
    "model": V2_NAME,
    "sha256": V2,
    "plugin": "industrial",
    "recipe": "steel",
    "version": "2026-11",
    "registered": False,
    "inspections": 4,
    "reviewed": 2,
    "corrected": 1,
    "share_of_inspections": 0.25,
    "share_of_reviewed": 0.5,
    "reasons": {"verdict": 1, "regions": 1, "drawn": 0},
}
NO_MODEL_ROW = {
    "model": "(no model)",
    "sha256": None,
    "plugin": None,
    "recipe": None,
    "version": None,
    "registered": False,
    "inspections": 1,
    "reviewed": 0,
    "corrected": 0,
    "share_of_inspections": 0.0,
    "share_of_reviewed": None,
    "reasons": {"verdict": 0, "regions": 0, "drawn": 0},
}


def test_corrections_per_model_version(line):
    got = build_report(line, ReportFilters()).to_dict()["review"]["corrections"]
    assert got == [V1_ROW, V2_ROW, NO_MODEL_ROW]


def test_the_report_filters_select_the_inspections(line):
    only_b = build_report(line, ReportFilters.parse(station="b")).to_dict()["review"]
    assert only_b["corrections"] == [V2_ROW, NO_MODEL_ROW]
    fails = build_report(line, ReportFilters.parse(verdict="FAIL")).to_dict()["review"]
    v1 = fails["corrections"][0]
    # the FAILs of v1: 1, 2, 4, 6, 7, 8, 10, 11, 12; corrected 2, 4, 6, 7
    assert (v1["inspections"], v1["reviewed"], v1["corrected"]) == (9, 8, 4)
    assert v1["reasons"] == {"verdict": 1, "regions": 2, "drawn": 2}


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


def test_terminal_at_80_columns_keeps_every_number(line):
    text = _terminal(build_report(line, ReportFilters()), 80)
    assert all(cell_len(ln) <= 80 for ln in text.splitlines())
    cells = _rows_of(text, "Corrections per model version")
    assert cells[0] == ["steel@v1", "12", "10", "6", "50.0%", "60.0%"]
    assert cells[2] == ["(no model)", "1", "0", "0", "0.0%", "-"]
    v2 = cells[1]
    assert v2[1:] == ["4", "2", "1", "25.0%", "50.0%"]
    # the hostile file name: whole (wrapped, never cut), its escape code shown, never run
    assert v2[0].replace(" ", "") == '<imgsrc=xonerror="alert(1)">\\x1b[31m.onnx@' + V2[:12]
    assert "\x1b" not in text
    why = _rows_of(text, "Why corrected")
    assert why[0] == ["steel@v1", "6", "3", "2", "3"] and why[1][1:] == ["1", "1", "1", "0"]
    assert CORRECTED in text.splitlines()  # what counts, in one line
    wide = _terminal(build_report(line, ReportFilters()), 200)
    assert "\\x1b[31m.onnx@" + V2[:12] in wide  # the escape shown, not run


def test_long_model_names_wrap_whole_with_their_version(sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    ensure_schema(engine)
    recipe = "left-door-panel-outer-skin-after-paint-" * 2
    add_version(
        engine,
        plugin="industrial",
        recipe=recipe,
        sha256=V1,
        path=tmp_path / "m.onnx",
        card={"sha256": V1},
        origin="trained",
        by="eng",
    )
    with Recorder(engine=engine) as rec:
        for i in range(1, 1235):
            rec.record(make_inspection(i, verdict="FAIL", regions=[region()], model=V1))
    user = add_user(engine, "olga", "operator", HASH)
    with connect(engine) as conn:
        iid = conn.execute(I.select().with_only_columns(I.c.id).limit(1)).scalar_one()
        rid = item(conn, iid).regions[0].id
    record_decision(engine, DecisionIn(iid, user.id, "PASS", (RegionLabel(rid, "not_defect"),)))
    report = build_report(engine, ReportFilters())
    engine.dispose()
    assert report.review.corrections[0].model == f"{recipe}@v1"  # whole in the data
    text = _terminal(report, 80)
    assert all(cell_len(ln) <= 80 for ln in text.splitlines())
    row = _rows_of(text, "Corrections per model")[0]
    assert row[0] == f"{recipe}@v1" and "…" not in text  # wrapped in its column, never cut
    assert row[1:] == ["1,234", "1", "1", "0.1%", "100.0%"]


def test_json_csv_and_html(line, tmp_path):
    url = line.url.render_as_string(hide_password=False)
    res = CliRunner().invoke(report_cmd, ["--db", url, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["review"]["corrections"] == [V1_ROW, V2_ROW, NO_MODEL_ROW]
    res = CliRunner().invoke(report_cmd, ["--db", url, "--format", "csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.reader(io.StringIO(res.stdout)))
    k = rows.index(["Corrections per model version"])
    assert rows[k + 1] == [
        "model version",
        "inspected",
        "reviewed",
        "corrected",
        "of inspected",
        "of reviewed",
    ]
    assert rows[k + 2] == ["steel@v1", "12", "10", "6", "50.0%", "60.0%"]
    assert rows[k + 3][0] == V2_NAME  # whole in the CSV
    assert rows[k + 4] == ["(no model)", "1", "0", "0", "0.0%", "'-"]  # csv_cell's '
    k = rows.index(["Why corrected (per model version)"])
    assert rows[k + 1 : k + 3] == [
        ["model version", "corrected", "verdict changed", "region relabelled", "defect drawn"],
        ["steel@v1", "6", "3", "2", "3"],
    ]
    html = render_html(build_report(line, ReportFilters()))
    assert "<h2>Corrections per model version</h2>" in html
    assert "<h2>Why corrected (per model version)</h2>" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=" in html
    assert f'<p class="muted">{CORRECTED}</p>' in html
    assert "<td>60.0%</td>" in html and '<td class="l">steel@v1</td>' in html


def test_the_html_tables_render_in_headless_chromium(line, tmp_path):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(f"Chromium not found (or set $INSPECT_CHROMIUM); {APT_HINT}")
    page = tmp_path / "report.html"
    page.write_text(render_html(build_report(line, ReportFilters())), encoding="utf-8")
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.as_uri(),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    assert 'data-status="ready"' in dom
    # eight of inspections (two per model version), then the queue, per station, class and
    # day, corrections and why
    assert re.search(r'data-tables="(\d+)"', dom).group(1) == "14"
    corr = dom[dom.index("Corrections per model version") :]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", corr)
    assert cells[:6] == ["steel@v1", "12", "10", "6", "50.0%", "60.0%"]
    assert cells[6].startswith("&lt;img src=x") and cells[6].endswith(f"@{V2[:12]}")
    assert "<img src=x" not in dom  # the recorded name stayed text


def test_nothing_reviewed_shows_no_correction_tables(db_url):
    engine = make_engine(db_url)
    with Recorder(engine=engine) as rec:
        rec.record(make_inspection(1, verdict="FAIL", regions=[region()]))
    report = build_report(engine, ReportFilters())
    engine.dispose()
    assert [
        (c.inspections, c.reviewed, c.share_of_reviewed) for c in report.review.corrections
    ] == [(1, 0, None)]
    text = _terminal(report, 80)
    assert "Corrections per model version" not in text and "Operator review" in text
    assert "Corrections per model version" not in render_html(report)


def test_empty_database(db_url):
    engine = make_engine(db_url)
    report = build_report(engine, ReportFilters())
    engine.dispose()
    assert report.review.corrections == []


def test_versions_of_two_plugins_with_one_recipe_name_are_told_apart(sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    ensure_schema(engine)
    for plugin, sha in (("industrial", V1), ("textile", V2)):
        add_version(
            engine,
            plugin=plugin,
            recipe="steel",
            sha256=sha,
            path=tmp_path / f"{plugin}.onnx",
            card={"sha256": sha},
            origin="trained",
            by="eng",
        )
    with Recorder(engine=engine) as rec:
        rec.record(make_inspection(1, model=V1))
        rec.record(make_inspection(2, model=V2, plugin="textile"))
    report = build_report(engine, ReportFilters())
    engine.dispose()
    assert [c.model for c in report.review.corrections] == [
        "industrial:steel@v1",
        "textile:steel@v1",
    ]
