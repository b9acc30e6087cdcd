"""Drawn marks over HTTP (a live uvicorn on 127.0.0.1, SQLite and PostgreSQL): the decision form
carries them, a bad one is an error page that says which mark and why and records nothing, and
a name an operator typed is shown escaped wherever the page shows it."""

from __future__ import annotations

import html
import json
import re

import pytest
import sqlalchemy as sa
from review_kit import Client, add_user, box_region, live_server, record_item

from inspect_db.engine import make_engine
from inspect_db.records.recorder import Recorder

pytest.importorskip("starlette")
pytest.importorskip("argon2")

HOSTILE = "<img src=x onerror=alert(1)>'\""


def count(engine, table: str) -> int:
    with engine.connect() as c:
        return c.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


@pytest.fixture
def site(db_url, tmp_path):
    engine = make_engine(db_url)
    with Recorder(engine=engine) as rec:
        iid = record_item(rec, tmp_path, 1, regions=[box_region("scratch", 5, 5, 10, 6)])
    add_user(engine, "olga", "operator")
    with live_server(engine) as base:
        c = Client(base)
        c.login("olga")
        yield c, engine, iid
    engine.dispose()


def test_a_bad_mark_is_an_error_page_naming_it_and_nothing_is_recorded(site):
    c, engine, iid = site
    token = c.csrf(f"/item/{iid}")
    poly = {"kind": "polygon", "points": [[1, 1], [20, 1], [20, 20]], "choice": "class:crack"}
    for marks, status, words in (
        ([{**poly, "points": [[1, 1], [99, 1], [20, 20]]}], 400, "point 2 at (99, 1) lies outside"),
        ([poly, {**poly, "choice": ""}], 400, "drawn mark 2 has no class"),
        ([{**poly, "kind": "stroke", "width": 200}], 400, "brush width 200 px"),
        ("[oops", 400, "could not be read"),
    ):
        text = marks if isinstance(marks, str) else json.dumps(marks)
        r = c.post(f"/item/{iid}/decide", {"csrf": token, "verdict": "FAIL", "marks": text})
        assert r.status == status and 'data-page="error"' in r.text, r.text[:400]
        assert html.escape(words, quote=False) in r.text, (words, r.text[-800:])
    assert count(engine, "review") == count(engine, "review_mark") == 0


def test_typed_names_are_recorded_and_shown_escaped(site):
    c, engine, iid = site
    page = c.get(f"/item/{iid}").text
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    region = re.search(r'name="region-(\d+)"', page).group(1)
    marks = [
        {"kind": "stroke", "points": [[1, 40], [30, 40]], "width": 3, "choice": f"class:{HOSTILE}"}
    ]
    r = c.post(
        f"/item/{iid}/decide",
        {
            "csrf": token,
            "verdict": "FAIL",
            f"region-{region}": f"class:{HOSTILE}",
            "marks": json.dumps(marks),
        },
    )
    assert r.status == 303, r.text[:400]
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT class_name, width FROM review_mark")).one()
        label = conn.execute(sa.text("SELECT class_name FROM review_region")).scalar_one()
    assert tuple(stored) == (HOSTILE, 3.0) and label == HOSTILE
    page = c.get(f"/item/{iid}").text
    assert HOSTILE not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # in the options and the history
    # the script's data, in a single-quoted attribute, parses back to the name
    attr = re.search(r"data-draw='([^']*)'", page).group(1)
    data = json.loads(html.unescape(attr))
    assert HOSTILE in data["names"] and data["marks"][0]["choice"] == f"class:{HOSTILE}"
    assert data["marks"][0]["points"] == [[1.0, 40.0], [30.0, 40.0]]
    assert re.findall(r"<script[^>]*>", page) == [
        '<script src="/static/draw.js">',
        '<script src="/static/picture.js">',
        '<script src="/static/item.js">',
    ]
