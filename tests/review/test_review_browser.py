"""The review page in headless Chromium (Debian's chromium, driven over the DevTools pipe):
log in, see the queue, a new REVIEW item appears without a reload, decide from the keyboard,
and the decisions reach the database."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa
from chromium_kit import APT_HINT, find_chromium
from chromium_pipe import Browser
from review_kit import PASSWORD, add_user, box_region, live_server, record_item

from inspect_db.engine import make_engine
from inspect_db.records.recorder import Recorder

pytest.importorskip("starlette")
pytest.importorskip("argon2")


def labels(engine, inspection_id: int) -> tuple[str, list[tuple[str, str | None, str]]]:
    """The latest decision on an inspection: its verdict and (label, class, model class) per
    region, in the regions' order."""
    with engine.connect() as c:
        rid, verdict = c.execute(
            sa.text(
                "SELECT id, verdict FROM review WHERE inspection_id = :i ORDER BY id DESC LIMIT 1"
            ),
            {"i": inspection_id},
        ).one()
        rows = c.execute(
            sa.text(
                "SELECT l.label, l.class_name, r.class_name FROM review_region l "
                "JOIN region r ON r.id = l.region_id WHERE l.review_id = :r ORDER BY r.id"
            ),
            {"r": rid},
        ).all()
    return verdict, [tuple(r) for r in rows]


def log_in(b: Browser, name: str = "olga") -> None:
    """On the login page: log in as ``name`` and wait for the queue."""
    b.wait("document.body.dataset.page === 'login'")
    b.js(
        f"document.getElementById('name').value = {json.dumps(name)};"
        f"document.getElementById('password').value = {json.dumps(PASSWORD)};"
        "document.getElementById('login').click()"
    )
    b.wait("document.body.dataset.page === 'queue' && document.body.dataset.ready === '1'")


@pytest.fixture
def chromium():
    path = find_chromium()
    if path is None:
        pytest.skip(
            f"Chromium not found (chromium, chromium-browser, $INSPECT_CHROMIUM); {APT_HINT}"
        )
    return path


def test_operator_works_the_queue_from_the_keyboard(chromium, sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    now = time.time()
    two = [box_region("scratch", 5, 5, 10, 6), box_region("dent", 30, 20, 8, 8)]
    with Recorder(engine=engine) as rec:
        older = record_item(rec, tmp_path, 1, verdict="REVIEW", regions=two, at=now - 60)
        failed = record_item(rec, tmp_path, 2, verdict="FAIL", at=now - 30)
    add_user(engine, "olga", "operator")
    with (
        live_server(engine, poll_seconds=0.3) as base,
        Browser(chromium, tmp_path / "profile") as b,
    ):
        b.go(base + "/")
        log_in(b)
        rows = b.js("[...document.querySelectorAll('#queue tr.row')].map(r => +r.dataset.id)")
        assert rows == [older, failed]  # REVIEW first, then FAIL
        b.js("window.sameDocument = true")  # gone if the page reloads

        with Recorder(engine=engine) as rec:  # a station records a new REVIEW item
            new = record_item(rec, tmp_path, 3, verdict="REVIEW", regions=two, at=time.time())
        b.wait("document.querySelectorAll('#queue tr.row').length === 3")
        assert b.js("[...document.querySelectorAll('#queue tr.row')].map(r => +r.dataset.id)") == [
            new,
            older,
            failed,
        ]
        assert b.js("window.sameDocument === true && document.body.dataset.arrived") == "1"
        assert b.js("document.getElementById('pending').textContent") == "3"

        b.key("Enter")  # opens the selected (first) item
        b.wait(
            f"document.body.dataset.page === 'item' && document.body.dataset.item === '{new}' "
            "&& document.body.dataset.ready === '1'"
        )
        assert b.js("document.querySelectorAll('#shapes .shape').length") == 2
        b.key("j")  # the second region (the dent) ...
        b.key("x")  # ... is not a defect
        b.key("f")  # fail: the first region is confirmed as the model said
        b.wait(f"document.body.dataset.item === '{older}' && document.body.dataset.ready === '1'")
        assert labels(engine, new) == (
            "FAIL",
            [("defect", "scratch", "scratch"), ("not_defect", None, "dent")],
        )

        b.key("ArrowDown")  # the dent ...
        b.key("1")  # ... is a scratch (class 1)
        b.key("p")  # pass: the region left alone is no defect
        b.wait(f"document.body.dataset.item === '{failed}' && document.body.dataset.ready === '1'")
        assert labels(engine, older) == (
            "PASS",
            [("not_defect", None, "scratch"), ("defect", "scratch", "dent")],
        )

        b.key("n")  # the last item: skipping it leads back to the queue
        b.wait("document.body.dataset.page === 'queue' && document.body.dataset.ready === '1'")
        assert b.js("[...document.querySelectorAll('#queue tr.row')].map(r => +r.dataset.id)") == [
            failed
        ]
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM review")).scalar_one() == 2
        verdicts = c.execute(sa.text("SELECT verdict FROM inspection ORDER BY id")).scalars().all()
    assert verdicts == ["REVIEW", "FAIL", "REVIEW"]  # the model's verdicts stay
    engine.dispose()


def test_outlines_follow_a_recorded_overlay_only_and_others_decisions_leave_the_queue(
    chromium, sqlite_url, tmp_path
):
    """Regions are drawn in the frame of a recorded overlay (a recipe that resizes), else in
    the image's own; the grey stand-in of a missing overlay never resizes them. An item another
    operator decides leaves an open pending queue."""
    import cv2
    import numpy as np
    from review_kit import Client

    engine = make_engine(sqlite_url)
    with Recorder(engine=engine) as rec:
        bare = record_item(rec, tmp_path, 1, overlay=False, at=time.time() - 60)
        framed = record_item(rec, tmp_path, 2, at=time.time() - 30)
    cv2.imwrite(str(tmp_path / "ov0002.png"), np.zeros((24, 32, 3), np.uint8))  # a half frame
    add_user(engine, "olga")
    add_user(engine, "erik")
    with live_server(engine, poll_seconds=0.3) as base, Browser(chromium, tmp_path / "p") as b:
        b.go(base + "/")
        log_in(b)
        for item, box in ((bare, "0 0 64 48"), (framed, "0 0 32 24")):
            b.go(f"{base}/item/{item}")
            b.wait(
                "document.body.dataset.ready === '1' && document.getElementById('overlay').complete"
            )
            time.sleep(0.2)
            assert b.js("document.getElementById('shapes').getAttribute('viewBox')") == box
        b.go(base + "/")
        b.wait("document.body.dataset.page === 'queue' && document.body.dataset.ready === '1'")
        assert b.js("document.querySelectorAll('#queue tr.row').length") == 2
        erik = Client(base)
        erik.login("erik")
        erik.post(f"/item/{framed}/decide", {"csrf": erik.csrf(), "verdict": "PASS"})
        b.wait("document.querySelectorAll('#queue tr.row').length === 1")
        assert b.js("+document.querySelector('#queue tr.row').dataset.id") == bare
    engine.dispose()
