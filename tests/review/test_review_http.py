"""The review page over HTTP (a live uvicorn on 127.0.0.1): logging in, sessions, CSRF, roles,
error pages that change nothing, recorded images served safely. On SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
import sqlalchemy as sa
from review_kit import PASSWORD, Client, add_user, box_region, live_server, record_item

from inspect_db.engine import make_engine
from inspect_db.records.recorder import Recorder

pytest.importorskip("starlette")
pytest.importorskip("argon2")


def count(engine, table: str) -> int:
    with engine.connect() as c:
        return c.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


@pytest.fixture
def site(db_url, tmp_path):
    """A database with two queued items and two users, served live."""
    engine = make_engine(db_url)
    with Recorder(engine=engine) as rec:
        fail = record_item(rec, tmp_path, 1, verdict="FAIL")
        review = record_item(
            rec,
            tmp_path,
            2,
            verdict="REVIEW",
            regions=[box_region("scratch", 5, 5, 10, 6), box_region("dent", 30, 20, 8, 8)],
        )
    add_user(engine, "olga", "operator")
    add_user(engine, "erik", "engineer")
    with live_server(engine) as base:
        yield base, engine, {"fail": fail, "review": review}
    engine.dispose()


def test_pages_need_a_login_and_cookies_are_httponly_and_samesite(site):
    base, engine, ids = site
    c = Client(base)
    r = c.get(f"/item/{ids['review']}")
    assert r.status == 303 and r.headers["location"] == f"/login?next=%2Fitem%2F{ids['review']}"
    assert c.get(f"/media/{ids['review']}/image").status == 303  # images too
    poll = c.get("/queue/new?after=0", headers={"Accept": "application/json"})
    assert poll.status == 401 and "log in again" in poll.text  # the page says so, not stalls
    bad = c.login("olga", "wrong password!")
    assert bad.status == 401 and "wrong name or password" in bad.text
    ok = c.login("olga")
    assert ok.status == 303 and ok.headers["location"] == "/"
    cookie = next(c.lower() for c in ok.set_cookies if c.startswith("inspect_review="))
    assert "path=/" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    page = c.get("/")
    assert page.status == 200 and "Review queue" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"


def test_password_guessing_is_braked(site):
    base, _, _ = site
    c = Client(base)
    for _ in range(5):
        assert c.login("erik", "guess-guess").status == 401
    r = c.login("erik")  # the right password, too late
    assert r.status == 429 and "too many wrong passwords" in r.text
    assert c.login("olga").status == 303  # another name is not affected


def test_a_login_without_its_token_is_refused(site):
    base, _, _ = site
    c = Client(base)
    r = c.post("/login", {"name": "olga", "password": "correct horse battery"})
    assert r.status == 403 and "security token" in r.text
    assert c.get("/").status == 303  # still not logged in


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(site):
    base, engine, ids = site
    c = Client(base)
    c.login("olga")
    for data in (
        {"verdict": "PASS"},  # no token
        {"verdict": "PASS", "csrf": "forged"},  # a wrong one
    ):
        r = c.post(f"/item/{ids['review']}/decide", data)
        assert r.status == 403 and "CSRF" in r.text, r.text
    other = Client(base)  # another session's token is no good either
    other.login("erik")
    r = c.post(f"/item/{ids['review']}/decide", {"verdict": "PASS", "csrf": other.csrf()})
    assert r.status == 403
    assert count(engine, "review") == 0 and count(engine, "review_region") == 0
    r = c.post("/logout", {})
    assert r.status == 403 and c.get("/").status == 200  # logging out needs the token too


def test_a_decision_is_recorded_and_leads_to_the_next_item(site):
    base, engine, ids = site
    c = Client(base)
    c.login("olga")
    page = c.get(f"/item/{ids['review']}?station=line-1")
    assert page.status == 200
    regions = re.findall(r'name="region-(\d+)"', page.text)
    assert len(regions) == 2
    token = c.csrf(f"/item/{ids['review']}")
    r = c.post(
        f"/item/{ids['review']}/decide?station=line-1",
        {
            "csrf": token,
            "verdict": "FAIL",
            "seen": "",
            f"region-{regions[0]}": "not_defect",
            f"region-{regions[1]}": "class:scratch",
            "note": "dent is a scratch",
        },
    )
    with engine.connect() as conn:  # the next item confirms the decision saved (its id)
        saved = conn.execute(sa.text("SELECT id FROM review")).scalar_one()
    assert r.status == 303 and r.headers["location"] == (
        f"/item/{ids['fail']}?station=line-1&saved={saved}"
    )
    with engine.connect() as conn:
        rv = conn.execute(sa.text("SELECT * FROM review")).mappings().one()
        labels = conn.execute(
            sa.text("SELECT region_id, label, class_name FROM review_region ORDER BY region_id")
        ).all()
        model = conn.execute(
            sa.text("SELECT verdict FROM inspection WHERE id = :i"), {"i": ids["review"]}
        ).scalar_one()
    assert (rv["verdict"], rv["model_verdict"], rv["note"]) == (
        "FAIL",
        "REVIEW",
        "dent is a scratch",
    )
    assert [tuple(x) for x in labels] == [
        (int(regions[0]), "not_defect", None),
        (int(regions[1]), "defect", "scratch"),
    ]
    assert model == "REVIEW"  # the inspection keeps the model's verdict
    again = c.get(f"/item/{ids['review']}")
    assert "Decided" in again.text and "dent is a scratch" in again.text  # the audit trail
    # deciding from a page loaded before that decision is a conflict, and writes nothing
    stale = c.post(f"/item/{ids['review']}/decide", {"csrf": token, "verdict": "PASS", "seen": ""})
    assert stale.status == 409 and "reload" in stale.text
    assert count(engine, "review") == 1


def test_bad_requests_get_an_error_page_and_change_nothing(site):
    base, engine, ids = site
    c = Client(base)
    c.login("olga")
    token = c.csrf()
    cases = [
        (
            "POST",
            f"/item/{ids['review']}/decide",
            {"csrf": token, "verdict": "MAYBE"},
            400,
            "decide PASS or FAIL",
        ),
        (
            "POST",
            f"/item/{ids['review']}/decide",
            {"csrf": token, "verdict": "PASS", "seen": "x"},
            400,
            "not a decision id",
        ),
        (
            "POST",
            f"/item/{ids['fail']}/decide",
            {"csrf": token, "verdict": "FAIL", "region-999999": "unsure"},
            400,
            "not a region",
        ),
        (
            "POST",
            "/item/987654/decide",
            {"csrf": token, "verdict": "PASS"},
            404,
            "not in the database",
        ),
        ("GET", "/item/987654", None, 404, "not in the database"),
        ("GET", "/?since=yesterday-ish", None, 400, "not a time"),
        ("GET", "/?status=everything", None, 400, "status"),
        ("GET", "/queue/new?after=abc", None, 400, "after"),
        ("GET", "/queue/new?after=99999999999999999999", None, 400, "after"),
        ("GET", "/queue/new?after=1&decided_after=-3", None, 400, "decided_after"),
        ("GET", "/item/99999999999999999999", None, 404, "no page"),
        ("GET", "/media/99999999999999999999/image", None, 404, "no page"),
        (
            "POST",
            "/item/99999999999999999999/decide",
            {"csrf": token, "verdict": "PASS"},
            404,
            "no page",
        ),
        (
            "POST",
            f"/item/{ids['review']}/decide",
            {"csrf": token, "verdict": "PASS", "seen": "\u00b2"},
            400,
            "not a decision id",
        ),
        ("GET", "/nowhere", None, 404, "no page"),
        ("GET", f"/media/{ids['fail']}/secrets", None, 404, "image or overlay"),
    ]
    for method, path, data, status, words in cases:
        r = c.request(method, path, data)
        assert r.status == status, (path, r.status, r.text[:300])
        assert "<!DOCTYPE html>" in r.text and 'data-page="error"' in r.text, path
        if words:
            assert words in r.text, (path, r.text)
    region = re.search(r'name="region-(\d+)"', c.get(f"/item/{ids['fail']}").text).group(1)
    r = c.post(
        f"/item/{ids['fail']}/decide",
        {"csrf": token, "verdict": "FAIL", f"region-{region}": "class:background"},
    )
    assert r.status == 400 and "background is no defect" in r.text  # a new name, but not that
    assert count(engine, "review") == 0


def test_images_are_served_from_the_database_only(site, tmp_path):
    base, engine, ids = site
    c = Client(base)
    c.login("olga")
    r = c.get(f"/media/{ids['fail']}/image")
    assert r.status == 200 and r.headers["content-type"] == "image/png"
    assert r.body == (tmp_path / "img0001.png").read_bytes()
    thumb = c.get(f"/media/{ids['fail']}/overlay?thumb=1")
    assert thumb.headers["content-type"] == "image/jpeg"
    (tmp_path / "img0001.png").unlink()
    gone = c.get(f"/media/{ids['fail']}/image")
    assert gone.headers["content-type"] == "image/svg+xml" and "file not found" in gone.text
    assert "x-review-missing" in gone.headers
    assert c.get("/media/..%2F..%2Fetc%2Fpasswd/image").status == 404  # ids only
    with engine.begin() as conn:  # a path recorded by mistake that is not a regular file
        conn.execute(
            sa.text("UPDATE inspection SET source = '/dev/zero' WHERE id = :i"), {"i": ids["fail"]}
        )
    r = c.get(f"/media/{ids['fail']}/image")
    assert r.headers["content-type"] == "image/svg+xml" and "not a regular file" in r.text


def test_operators_decide_engineers_also_export(site):
    base, engine, ids = site
    op = Client(base)
    op.login("olga")
    assert "/export" not in op.get("/").text
    assert op.get("/export").status == 403
    r = op.post("/export", {"csrf": op.csrf()})
    assert r.status == 403 and "engineer" in r.text
    eng = Client(base)
    eng.login("erik")
    token = eng.csrf()
    eng.post(f"/item/{ids['fail']}/decide", {"csrf": token, "verdict": "FAIL"})
    r = eng.post("/export", {"csrf": token, "val_share": "0"})
    assert r.status == 200 and r.headers["content-type"] == "application/zip", r.text[:500]
    names = zipfile.ZipFile(io.BytesIO(r.body)).namelist()
    assert "classes.json" in names and any(n.startswith("train/masks/") for n in names)


def test_a_disabled_user_is_logged_out_at_once(site):
    from inspect_review.storage.store import set_disabled

    base, engine, _ = site
    c = Client(base)
    c.login("olga")
    assert c.get("/").status == 200
    set_disabled(engine, "olga", True)
    assert c.get("/").status == 303
    assert c.login("olga").status == 401


def test_recorded_text_is_escaped_and_next_stays_on_the_site(site, tmp_path):
    base, engine, _ = site
    with Recorder(engine=engine) as rec:
        iid = record_item(rec, tmp_path, 7, verdict="REVIEW", station="<script>alert(1)</script>")
    c = Client(base)
    form = c.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    r = c.post(
        "/login",
        {
            "csrf": token,
            "name": "olga",
            "password": "correct horse battery",
            "next": "//evil.example/",
        },
    )
    assert r.status == 303 and r.headers["location"] == "/"
    for path in ("/", f"/item/{iid}"):
        page = c.get(path).text
        assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)" in page
    token = c.csrf(f"/item/{iid}")
    c.post(
        f"/item/{iid}/decide", {"csrf": token, "verdict": "PASS", "note": '<img src=x onerror="y">'}
    )
    page = c.get(f"/item/{iid}").text
    assert '<img src=x onerror="y">' not in page and "&lt;img src=x" in page
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts == [  # no inline script anywhere
        '<script src="/static/draw.js">',
        '<script src="/static/picture.js">',
        '<script src="/static/item.js">',
    ]


def test_a_new_password_ends_the_users_sessions(site):
    from inspect_review.auth import hash_password
    from inspect_review.storage.store import set_password

    base, engine, _ = site
    c, other = Client(base), Client(base)
    c.login("olga")
    other.login("erik")
    assert c.get("/").status == 200
    set_password(engine, "olga", hash_password("a brand new one"))
    assert c.get("/").status == 303  # to the login page: the old password's session is over
    assert other.get("/").status == 200  # another user's session is not touched
    assert c.login("olga", "a brand new one").status == 303 and c.get("/").status == 200


def test_a_mistyped_password_keeps_where_the_operator_was_going(site):
    base, _, ids = site
    c = Client(base)
    form = c.get(f"/login?next=/item/{ids['review']}")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    data = {"csrf": token, "name": "olga", "password": "wrong", "next": f"/item/{ids['review']}"}
    again = c.post("/login", data)
    assert again.status == 401 and f'value="/item/{ids["review"]}"' in again.text
    token = re.search(r'name="csrf" value="([^"]+)"', again.text).group(1)
    ok = c.post("/login", {**data, "csrf": token, "password": PASSWORD})
    assert ok.status == 303 and ok.headers["location"] == f"/item/{ids['review']}"


def test_an_error_page_can_log_out(site):
    base, _, _ = site
    c = Client(base)
    c.login("olga")
    page = c.get("/item/987654")  # an error of a signed-in page: its header has "Log out"
    assert page.status == 404
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert token and c.post("/logout", {"csrf": token}).status == 303
    assert c.get("/").status == 303  # logged out


def test_a_note_of_2000_characters_with_line_breaks_is_accepted(site):
    base, engine, ids = site
    c = Client(base)
    c.login("olga")
    note = "\r\n".join(["x" * 99] * 20)  # 1999 characters as typed, 2018 as a browser sends
    r = c.post(f"/item/{ids['fail']}/decide", {"csrf": c.csrf(), "verdict": "FAIL", "note": note})
    assert r.status == 303, r.text[:300]
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT note FROM review")).scalar_one()
    assert stored == "\n".join(["x" * 99] * 20)


def test_the_queue_poll_says_which_items_others_decided(site):
    import json

    base, _, ids = site
    olga, erik = Client(base), Client(base)
    olga.login("olga")
    erik.login("erik")
    page = olga.get("/").text
    last = re.search(r'data-last-id="(\d+)"', page).group(1)
    last_review = re.search(r'data-last-review="(\d+)"', page).group(1)
    assert 'data-status="pending"' in page
    erik.post(f"/item/{ids['fail']}/decide", {"csrf": erik.csrf(), "verdict": "PASS"})
    poll = olga.get(
        f"/queue/new?after={last}&decided_after={last_review}",
        headers={"Accept": "application/json"},
    )
    d = json.loads(poll.text)
    assert d["decided"] == [{"id": ids["fail"], "verdict": "PASS", "by": "erik"}]
    assert d["decided_last"] > int(last_review) and d["pending"] == 1
    old = olga.get(f"/queue/new?after={last}", headers={"Accept": "application/json"})
    assert "decided" not in json.loads(old.text)  # a page of before this change asks nothing


def test_queue_thumbnails_without_an_overlay_show_the_image(db_url, tmp_path):
    engine = make_engine(db_url)
    with Recorder(engine=engine) as rec:
        bare = record_item(rec, tmp_path, 7, overlay=False)
    add_user(engine, "olga")
    with live_server(engine) as base:
        c = Client(base)
        c.login("olga")
        thumb = c.get(f"/media/{bare}/overlay?thumb=1")
        assert thumb.headers["content-type"] == "image/jpeg"  # the image, not the stand-in
        assert "x-review-missing" not in thumb.headers
        full = c.get(f"/media/{bare}/overlay")
        assert full.headers["content-type"] == "image/svg+xml"  # the overlay itself: none
        page = c.get(f"/item/{bare}").text
        assert 'id="overlay"' in page and "data-frame" not in page  # outlines keep the image's
    engine.dispose()


def test_media_roots_confine_the_pictures_served(db_url, tmp_path):
    """With --media-root only files under those folders are served (symlinks resolved): a row
    naming another file gets the stand-in picture."""
    archive, elsewhere = tmp_path / "archive", tmp_path / "elsewhere"
    engine = make_engine(db_url)
    with Recorder(engine=engine) as rec:
        inside = record_item(rec, archive, 1)
        outside = record_item(rec, elsewhere, 2)
    (archive / "link.png").symlink_to(elsewhere / "img0002.png")
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE inspection SET overlay_path = :p WHERE id = :i"),
            {"p": str(archive / "link.png"), "i": inside},
        )
    add_user(engine, "olga")
    with live_server(engine, media_roots=(str(archive),)) as base:
        c = Client(base)
        c.login("olga")
        assert c.get(f"/media/{inside}/image").headers["content-type"] == "image/png"
        for path in (f"/media/{outside}/image", f"/media/{inside}/overlay"):
            r = c.get(path)
            assert r.headers["content-type"] == "image/svg+xml", path
            assert "outside the folders this page serves" in r.text
        # the outlines are not sized by an overlay the page does not serve (it exists)
        assert "data-frame" not in c.get(f"/item/{inside}").text
        if engine.dialect.name == "sqlite":  # PostgreSQL text holds no NUL byte
            with engine.begin() as conn:  # a recorded path with a NUL: the stand-in, no 500
                conn.execute(
                    sa.text("UPDATE inspection SET source = :p WHERE id = :i"),
                    {"p": str(archive / "a\x00b.png"), "i": inside},
                )
            r = c.get(f"/media/{inside}/image")
            assert r.status == 200 and r.headers["content-type"] == "image/svg+xml"
    engine.dispose()


def test_a_16_bit_image_is_shown_scaled_to_the_bits_it_uses(tmp_path):
    """A 12-bit camera's raw values (0..4095) in a 16-bit PNG: a browser would show them black;
    the page sends an 8-bit PNG spanning 0..255."""
    import cv2
    import numpy as np

    from inspect_review.media import load_picture

    raw = np.tile(np.linspace(0, 4095, 64).astype(np.uint16), (8, 1))
    path = tmp_path / "raw12.png"
    cv2.imwrite(str(path), raw)
    pic = load_picture(str(path), "image")
    assert pic.media_type == "image/png" and pic.body != path.read_bytes()
    shown = cv2.imdecode(np.frombuffer(pic.body, np.uint8), cv2.IMREAD_UNCHANGED)
    assert shown.dtype == np.uint8 and shown.max() == 255 and shown.min() == 0
