"""Operators mark what the model missed, in headless Chromium: a polygon drawn with the mouse and
given a new class name, a brush stroke dragged across the image, a region's outline redrawn
from the keyboard alone; the decision saves them, the reopened item shows them, and the export
paints them into the mask."""

from __future__ import annotations

import csv
import json
import time

import cv2
import numpy as np
import pytest
import sqlalchemy as sa
from chromium_kit import APT_HINT, find_chromium
from chromium_pipe import Browser
from review_kit import PASSWORD, add_user, box_region, live_server, record_item

from inspect_db.engine import make_engine
from inspect_db.records.recorder import Recorder
from inspect_review.export import export_dataset
from inspect_review.storage.export import ExportFilters

pytest.importorskip("starlette")
pytest.importorskip("argon2")

SHOT = (1366, 800)


@pytest.fixture
def chromium():
    path = find_chromium()
    if path is None:
        pytest.skip(
            f"Chromium not found (chromium, chromium-browser, $INSPECT_CHROMIUM); {APT_HINT}"
        )
    return path


def ready(b: Browser, item: int) -> None:
    b.wait(
        f"document.body.dataset.page === 'item' && document.body.dataset.item === '{item}' "
        "&& document.body.dataset.ready === '1' && document.getElementById('source').complete"
    )


def screen(b: Browser, x: float, y: float) -> tuple[float, float]:
    """Where image pixel (x, y) is on the screen (the drawing layer's box)."""
    r = b.js(
        "(() => { const r = document.getElementById('marks').getBoundingClientRect(); "
        "const d = JSON.parse(document.getElementById('tools').dataset.draw); "
        "return [r.left, r.top, r.width / d.width, r.height / d.height]; })()"
    )
    return r[0] + x * r[2], r[1] + y * r[3]


def mouse(b: Browser, kind: str, x: float, y: float, clicks: int = 1) -> None:
    sx, sy = screen(b, x, y)
    down = 1 if kind == "mousePressed" else 0
    b.page(
        "Input.dispatchMouseEvent",
        type=kind,
        x=sx,
        y=sy,
        button="left",
        buttons=down,
        clickCount=clicks,
    )


def click(b: Browser, x: float, y: float, clicks: int = 1) -> None:
    mouse(b, "mousePressed", x, y, clicks)
    mouse(b, "mouseReleased", x, y, clicks)


def drag(b: Browser, points: list[tuple[float, float]]) -> None:
    """Press at the first point, move through the others with the button down, release."""
    mouse(b, "mousePressed", *points[0])
    for x, y in points[1:]:
        sx, sy = screen(b, x, y)
        b.page("Input.dispatchMouseEvent", type="mouseMoved", x=sx, y=sy, button="left", buttons=1)
    mouse(b, "mouseReleased", *points[-1])


def rows(b: Browser) -> list[str]:
    return b.js(
        "[...document.querySelectorAll('#regions tr.region')].map(r => "
        "r.cells[0].textContent + '|' + r.cells[1].textContent + '|' + "
        "r.querySelector('select').value + (r.classList.contains('redrawn') ? '|redrawn' : ''))"
    )


def test_operator_draws_saves_reopens_and_exports(chromium, sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    two = [box_region("scratch", 5, 5, 10, 6), box_region("dent", 30, 20, 8, 8)]
    with Recorder(engine=engine) as rec:
        iid = record_item(rec, tmp_path / "archive", 1, verdict="REVIEW", regions=two)
        later = record_item(rec, tmp_path / "archive", 2, verdict="FAIL", at=time.time() - 60)
    add_user(engine, "olga", "operator")
    with (
        live_server(engine) as base,
        Browser(chromium, tmp_path / "profile", width=SHOT[0], height=SHOT[1]) as b,
    ):
        b.go(base + f"/item/{iid}")
        b.wait("document.body.dataset.page === 'login'")
        b.js(
            "document.getElementById('name').value = 'olga';"
            f"document.getElementById('password').value = {json.dumps(PASSWORD)};"
            "document.getElementById('login').click()"
        )
        ready(b, iid)
        assert "D</kbd> draw a polygon" in b.js("document.getElementById('keys').innerHTML")

        # a polygon with the mouse: three corners, the last one double-clicked
        b.key("d")
        assert b.js("document.getElementById('marks').classList.contains('drawing')")
        click(b, 44, 30)
        click(b, 56, 30)
        b.key("p")  # deciding while drawing is refused, and says why
        assert "finish it (Enter)" in b.js("document.getElementById('draw-status').textContent")
        click(b, 56, 42, 1)
        click(b, 56, 42, 2)  # the double-click closes it
        b.wait("document.querySelectorAll('#regions tr.drawn').length === 1")
        assert rows(b)[2] == "D1|drawn polygon|"  # no class yet: the page asks for one
        b.key("t")  # ... a new name, typed
        b.wait("document.activeElement.id === 'class-name'")
        b.page("Input.insertText", text="crack")
        b.key("Enter")
        b.wait("document.querySelector('#regions tr.drawn select').value === 'class:crack'")

        # a brush stroke, 3 px wide, dragged along a thin line
        b.key("b")
        b.key("]")
        b.key("]")
        assert b.js("document.getElementById('brush-width').textContent") == "3"
        drag(b, [(4, 40), (12, 40), (20, 40), (28, 40)])
        b.wait("document.querySelectorAll('#regions tr.drawn').length === 2")
        b.key("Escape")  # leaves the brush
        assert rows(b)[3] == "D2|brush 3 px|class:crack"  # the last drawn class goes on

        b.key("d")  # a polygon drawn by mistake ...
        for x, y in ((2, 2), (8, 2), (8, 8)):
            click(b, x, y)
        b.key("Enter")
        b.wait("document.querySelectorAll('#regions tr.drawn').length === 3")
        b.key("Delete")  # ... is taken away before it is saved
        b.wait("document.querySelectorAll('#regions tr.drawn').length === 2")
        assert "removed" in b.js("document.getElementById('draw-status').textContent")

        # region 1's outline redrawn from the keyboard: the cross starts at the middle of the
        # image (32, 24) and moves a pixel a key; Space adds a corner where it is
        b.key("k")
        b.key("k")
        b.key("k")  # the first row: region 1 (the scratch)
        b.key("r")
        b.wait("document.getElementById('marks').classList.contains('drawing')")
        for moves in (
            [("ArrowUp", 18), ("ArrowLeft", 26)],  # (6, 6)
            [("ArrowRight", 10)],  # (16, 6)
            [("ArrowDown", 8)],  # (16, 14)
            [("ArrowLeft", 10)],  # (6, 14)
        ):
            for k, n in moves:
                for _ in range(n):
                    b.key(k)
            b.key(" ")
        b.key("Backspace")  # takes the last corner back ...
        b.key(" ")  # ... and puts it again
        b.key("Enter")
        b.wait("document.querySelectorAll('#regions tr.drawn').length === 3")
        assert rows(b)[0] == "1|scratch|auto|redrawn"
        assert rows(b)[4] == "D3|drawn polygon, redraws 1|class:scratch"

        assert b.js("document.querySelector('#regions tr.selected').cells[0].textContent") == "D3"
        for _ in range(3):
            b.key("k")  # up to region 2 (the dent) ...
        b.key("x")  # ... which is not a defect
        b.screenshot(tmp_path / "drawn.png")
        b.key("f")
        ready(b, later)

        # reopening shows the decision's marks and labels
        b.go(base + f"/item/{iid}")
        ready(b, iid)
        assert rows(b) == [
            "1|scratch|confirm|redrawn",
            "2|dent|not_defect",
            "D1|drawn polygon|class:crack",
            "D2|brush 3 px|class:crack",
            "D3|drawn polygon, redraws 1|class:scratch",
        ]
        assert b.js("document.querySelectorAll('#marks .mark').length") == 3
        history = b.js("document.getElementById('history').textContent")
        assert "D2 (brush 3 px): crack" in history and "D3 (polygon, redraws 1): scratch" in history
        b.screenshot(tmp_path / "reopened.png")

    with engine.connect() as c:
        marks = c.execute(
            sa.text(
                "SELECT m.number, m.kind, m.width, m.label, m.class_name, m.replaces_region_id, "
                "m.points, u.name FROM review_mark m JOIN review r ON r.id = m.review_id "
                "JOIN review_user u ON u.id = r.user_id ORDER BY m.number"
            )
        ).all()
        labels = c.execute(
            sa.text("SELECT label, class_name FROM review_region ORDER BY region_id")
        ).all()
        region1 = c.execute(
            sa.text("SELECT min(id) FROM region WHERE inspection_id = :i"), {"i": iid}
        ).scalar_one()
    assert [tuple(m[:6]) for m in marks] == [
        (1, "polygon", None, "defect", "crack", None),
        (2, "stroke", 3.0, "defect", "crack", None),
        (3, "polygon", None, "defect", "scratch", region1),
    ]
    assert all(m.name == "olga" for m in marks)
    assert json.loads(marks[2].points) == [[6, 6], [16, 6], [16, 14], [6, 14]]
    assert json.loads(marks[0].points) == [[44, 30], [56, 30], [56, 42]]
    assert [tuple(r) for r in labels] == [("defect", "scratch"), ("not_defect", None)]

    out = tmp_path / "dataset"
    summary = export_dataset(engine, out, ExportFilters())
    assert summary.classes == ["background", "scratch", "dent", "crack"]
    (row,) = list(csv.DictReader((out / "reviewed.csv").open()))[:1]
    assert int(row["inspection_id"]) == iid
    mask = cv2.imread(str(out / row["file"].replace("images", "masks")), 0)
    assert mask[34, 52] == 3  # inside the drawn polygon: crack
    assert (mask[39:42, 6:27] == 3).all()  # the brush stroke, 3 px wide
    assert mask[35, 16] == 255  # nobody judged this pixel
    assert mask[12, 10] == 1  # inside the redrawn outline: scratch
    assert mask[5, 5] == 0  # the model's old outline outside the new one: background
    assert mask[23, 33] == 0  # region 2: not a defect
    assert set(np.unique(mask)) == {0, 1, 3, 255}
    engine.dispose()
