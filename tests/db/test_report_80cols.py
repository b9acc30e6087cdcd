"""``inspect report`` in a terminal of 80 columns: every table fits, numbers are never cut or
wrapped, and no recorded name is cut (``demo-in…``): a long station, plugin, recipe, source,
model version or time wraps within its column (or columns stack), so the lines of each cell
read back as the whole value."""

from __future__ import annotations

import dataclasses
import io

import pytest
from db_support import make_inspection, region
from rich.cells import cell_len
from rich.console import Console

from inspect_db.engine import connect, make_engine
from inspect_db.records.recorder import Recorder
from inspect_db.reports.filters import ReportFilters
from inspect_db.reports.layout import Column, ReportTable
from inspect_db.reports.query import build_report
from inspect_db.reports.terminal import render_terminal, rich_table
from inspect_db.reports.terminal_fit import fit_table, wrap_heading, wrap_value
from inspect_db.tables import I
from inspect_review.storage.queue import item
from inspect_review.storage.store import add_user, record_decision
from inspect_review.storage.types import DecisionIn, RegionLabel

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
STATIONS = ("demo-inspection-line-1", "demo-inspection-line-2")
RECIPE = "steel-plate-front-left"
MODEL_FILE = "unet-steel-plate-front-left-2026-12.onnx"


def source(i: int) -> str:
    return f"/data/lines/demo/camera-0{i % 3}/frame-{i:06d}.png"


@pytest.fixture
def engine(sqlite_url):
    """Two stations with long names, a long recipe and sources, FAILs and REVIEWs decided."""
    engine = make_engine(sqlite_url)
    with Recorder(engine=engine) as rec:
        for i in range(12):
            verdict = ("PASS", "FAIL", "REVIEW")[i % 3]
            regs = [region("scratch", 30 + i)] if verdict != "PASS" else []
            insp = make_inspection(
                i, station=STATIONS[i % 2], verdict=verdict, regions=regs, recipe=RECIPE
            )
            card = {"sha256": "ab" * 32, "model": MODEL_FILE}
            rec.record(dataclasses.replace(insp, source=source(i)), model_card=card)
    user = add_user(engine, "olga", "operator", HASH)
    for i in (1, 2, 4, 5):
        with connect(engine) as conn:
            q = I.select().with_only_columns(I.c.id).where(I.c.image_sha256 == f"{i:064x}")
            view = item(conn, conn.execute(q).scalar_one())
        labels = tuple(RegionLabel(r.id, "not_defect") for r in view.regions)
        record_decision(engine, DecisionIn(view.id, user.id, "PASS", labels))
    yield engine
    engine.dispose()


def _terminal(width: int, engine) -> str:
    con = Console(record=True, width=width, file=io.StringIO())
    render_terminal(build_report(engine, ReportFilters()), con)
    return con.export_text()


def _table_lines(text: str, title: str) -> list[list[str]]:
    """The cells of each body line of the table ``title`` (row rules left out)."""
    lines = text.splitlines()
    start = next(k for k, ln in enumerate(lines) if title in ln)
    head = next(k for k in range(start, len(lines)) if lines[k].startswith("┡"))
    out = []
    for ln in lines[head + 1 :]:
        if ln.startswith("└"):
            break
        if not ln.startswith("├"):
            out.append([c.strip() for c in ln.strip("│").split("│")])
    return out


def _column(text: str, title: str, j: int) -> str:
    """Column ``j`` of a table, its lines joined: a wrapped value reads back whole."""
    return "".join(cells[j] for cells in _table_lines(text, title))


def test_every_table_fits_80_columns_and_cuts_no_name(engine):
    text = _terminal(80, engine)
    assert all(cell_len(ln) <= 80 for ln in text.splitlines())
    assert "…" not in text  # nothing shortened
    stations = _column(text, "Yield per station", 0)
    for whole in (*STATIONS, "industrial", RECIPE):
        assert whole in stations, whole
    worst = _column(text, "Worst images", 0)
    assert all(source(i) in worst for i in (1, 2, 4, 5, 7, 8, 10, 11))
    assert all(s in worst for s in STATIONS)
    per_station = _column(text, "Model and operator per station", 0)
    assert all(s in per_station for s in STATIONS)
    assert f"{MODEL_FILE}@abababababab" in _column(text, "Verdicts by model version", 0)


def test_headings_wrap_between_words_and_after_arrows(engine):
    text = _terminal(80, engine)
    lines = text.splitlines()
    start = next(k for k, ln in enumerate(lines) if "Model and operator per station" in ln)
    heads = lines[start + 2 : start + 4]  # the heading lines after the title and the rule
    words = "".join(heads).replace("┃", " ").split()
    assert {"FAIL->", "PASS", "REVIEW->", "FAIL", "confirmed", "agreement"} <= set(words)
    assert not any(w.endswith(("…", "PA", "REVIEW-")) for w in words)
    row = _table_lines(text, "Model and operator per station")[0]
    assert row[1:] == ["2", "0", "1", "1", "0", "0.0%"]  # every number whole on its line


def test_a_table_that_fits_is_left_as_it_is(engine):
    wide = _terminal(200, engine)
    assert f"│ {STATIONS[0]} │ industrial │ {RECIPE} │" in wide
    assert "├" not in wide  # one line per row


def test_wrapped_values_read_back_whole():
    for text, width in (
        ("/data/lines/demo/camera-00/frame-000057.png", 12),
        ("demo-inspection-line-1", 8),
        ("x" * 30, 7),
        ("検査モデル" * 4 + "@v3", 9),
        ("two words here", 5),
    ):
        lines = wrap_value(text, width).split("\n")
        assert all(cell_len(ln) <= width for ln in lines), (text, lines)
        assert "".join(lines) == text.replace(" ", "") or " ".join(lines) == text
    assert wrap_value("demo-inspection-line-1", 10).split("\n") == [
        "demo-",
        "inspection",
        "-line-1",
    ]
    assert wrap_heading("REVIEW->PASS", 8) == "REVIEW->\nPASS"
    assert wrap_heading("FAIL confirmed", 9) == "FAIL\nconfirmed"


def test_numbers_keep_their_width_in_a_narrow_table():
    t = ReportTable(
        "t",
        "T",
        (Column("station", "text"), Column("images"), Column("FAIL", verdict="FAIL")),
        (("a-very-long-station-name-" * 3, "1,234,567", "12"),),
    )
    fitted = fit_table(t, 40)
    assert [c.width for c in fitted.columns][1:] == [9, 4]
    assert fitted.rows[0][1] == "1,234,567"
    con = Console(record=True, width=40, file=io.StringIO())
    con.print(rich_table(t, 40))
    out = con.export_text()
    assert all(cell_len(ln) <= 40 for ln in out.splitlines()) and "1,234,567" in out
