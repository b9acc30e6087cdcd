"""The review page as a new user found it (issue 27, item 5, seen at 1366x800): a decision is
confirmed and can be undone (a new row: nothing deleted), the verdict's banner says when the
review band lowered a FAIL, the model version is shown, a reopened item shows the labels of the
decision in force; in Chromium at 1366x800 the keys and the rules are above the fold, the labels
on the picture are legible, the queue's thumbnails show whole images, and a page brought back
with Back is the item as it stands."""

from __future__ import annotations

import re
import time
from html import unescape

import pytest
import sqlalchemy as sa
from chromium_kit import APT_HINT, find_chromium
from chromium_pipe import Browser
from review_kit import PASSWORD, Client, add_user, box_region, live_server, record_item

from inspect_db.engine import connect, make_engine
from inspect_db.records.recorder import Recorder
from inspect_db.tables import I, M

pytest.importorskip("starlette")
pytest.importorskip("argon2")

BAND_NOTE = " (confidence in [0.5, 0.9): review)"  # what ReviewBand.adjust appends


def rows(engine, table: str) -> list[dict]:
    with engine.connect() as c:
        return [
            dict(r) for r in c.execute(sa.text(f"SELECT * FROM {table} ORDER BY id")).mappings()
        ]


def lowered(engine, iid: int, message: str = "2 region(s) of scratch, dent", on: str = "") -> None:
    """Make ``iid``'s record one whose min_area FAIL the review band lowered to REVIEW (as
    ``inspect_core.rules.builtin.ReviewBand.adjust`` records it)."""
    band = {"type": "review_band", "low": 0.5, "high": 0.9, **({"on": on} if on else {})}
    with connect(engine, write=True) as conn:
        conn.execute(
            sa.update(I)
            .where(I.c.id == iid)
            .values(
                fired=[
                    {
                        "rule": "min_area",
                        "decision": "REVIEW",
                        "message": message + BAND_NOTE,
                        "regions": [0, 1],
                    }
                ],
                thresholds={"rules": [{"type": "min_area", "min": 30}, band]},
            )
        )


@pytest.fixture
def site(db_url, tmp_path):
    """Two queued items (a FAIL, a REVIEW of two regions the band lowered), two users."""
    engine = make_engine(db_url)
    two = [box_region("scratch", 5, 5, 10, 6), box_region("dent", 30, 20, 8, 8)]
    with Recorder(engine=engine) as rec:
        fail = record_item(rec, tmp_path, 1, verdict="FAIL", at=time.time() - 60)
        review = record_item(rec, tmp_path, 2, verdict="REVIEW", regions=two)
    lowered(engine, review)
    add_user(engine, "olga", "operator")
    add_user(engine, "erik", "engineer")
    with live_server(engine) as base:
        yield base, engine, {"fail": fail, "review": review}
    engine.dispose()


def region_ids(page: str) -> list[str]:
    return re.findall(r'name="region-(\d+)"', page)


def selected(page: str) -> list[str]:
    """The value each region menu of an item page shows."""
    out = []
    for menu in re.findall(r'<select name="region-\d+".*?</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)"[^>]*\sselected', menu)
        out.append(chosen.group(1) if chosen else "auto")
    return out


def queued(c: Client) -> list[int]:
    return [int(i) for i in re.findall(r'<tr class="row[^"]*" data-id="(\d+)"', c.get("/").text)]


# -- 1. Saved: ... — Undo -------------------------------------------------------------------


def test_a_decision_is_confirmed_and_undone_by_a_new_row(site):
    base, engine, ids = site
    c = Client(base)
    c.login("olga")
    item = f"/item/{ids['review']}"
    r1, r2 = region_ids(c.get(item).text)
    choice = {f"region-{r1}": "auto", f"region-{r2}": "class:scratch", "seen": ""}
    r = c.post(item + "/decide", {"csrf": c.csrf(), "verdict": "FAIL", **choice})
    (decided,) = rows(engine, "review")
    assert r.status == 303 and r.headers["location"] == f"/item/{ids['fail']}?saved={decided['id']}"
    page = c.get(r.headers["location"]).text
    saved = unescape(re.sub(r"<[^>]+>|\s+", " ", re.search(r'id="saved".*?</div>', page, re.S)[0]))
    assert "Saved: FAIL for img0002.png — Undo" in re.sub(r"\s+", " ", saved)
    assert f'name="review" value="{decided["id"]}"' in page
    assert ids["review"] not in queued(c)

    labels_before = rows(engine, "review_region")
    r = c.post(item + "/undo", {"csrf": c.csrf(), "review": str(decided["id"])})
    assert r.status == 303 and r.headers["location"] == item
    first, undo = rows(engine, "review")
    assert first == decided and rows(engine, "review_region") == labels_before  # append-only
    assert (undo["model_verdict"], undo["supersedes_id"]) == ("UNDO", decided["id"])
    assert ids["review"] in queued(c)  # pending again
    page = c.get(item).text
    assert 'id="undone"' in page and 'id="latest"' not in page
    # the choices that decision made are back; the one its verdict implied is "auto" again
    assert selected(page) == ["auto", "class:scratch"]
    assert f'name="seen" value="{undo["id"]}"' in page

    again = c.post(item + "/undo", {"csrf": c.csrf(), "review": str(decided["id"])})
    assert again.status == 409 and "olga undid it" in unescape(again.text)
    assert len(rows(engine, "review")) == 2  # nothing written

    r = c.post(
        item + "/decide", {"csrf": c.csrf(), "verdict": "PASS", **choice, "seen": str(undo["id"])}
    )
    assert r.status == 303 and ids["review"] not in queued(c)
    erik = Client(base)
    erik.login("erik")
    latest = rows(engine, "review")[-1]["id"]
    refused = erik.post(item + "/undo", {"csrf": erik.csrf(), "review": str(latest)})
    assert refused.status == 400 and "only they can undo it" in unescape(refused.text)
    assert len(rows(engine, "review")) == 3


def test_an_undone_item_is_no_decision_for_the_export_or_the_queue_marks(site):
    from inspect_review.storage.export import ExportFilters, reviewed_images
    from inspect_review.storage.queue import decided_since, queue
    from inspect_review.storage.types import QueueFilters
    from inspect_review.storage.undo import record_undo

    base, engine, ids = site
    c = Client(base)
    c.login("olga")
    c.post(f"/item/{ids['fail']}/decide", {"csrf": c.csrf(), "verdict": "FAIL", "seen": ""})
    rid = rows(engine, "review")[-1]["id"]
    user = rows(engine, "review")[-1]["user_id"]
    record_undo(engine, ids["fail"], rid, user)
    with connect(engine) as conn:
        assert [i.inspection_id for i in reviewed_images(conn, ExportFilters())] == []
        assert decided_since(conn, 0).items == [(ids["fail"], "FAIL", "olga")]  # the undo: none
        everything = queue(conn, QueueFilters.parse(status="all"))
    assert {i.id: i.decided for i in everything} == {ids["fail"]: None, ids["review"]: None}


# -- 4. the banner: a FAIL lowered by the review band ------------------------------------


def test_the_banner_says_a_fail_rule_was_lowered_by_the_review_band(site):
    base, engine, ids = site
    c = Client(base)
    c.login("olga")
    page = c.get(f"/item/{ids['review']}").text
    why = unescape(re.search(r'<span id="why">(.*?)</span>', page)[1])
    # box_region: max confidence 0.8, mean 0.7 (the band's default: mean_prob)
    assert why == (
        "min_area asked for FAIL, lowered to REVIEW by the review band "
        "(highest mean confidence 0.70 < 0.9)"
    )
    assert 'class="banner REVIEW"' in page
    rules = unescape(re.sub(r"<[^>]+>|\s+", " ", re.search(r'id="rules".*?</ul>', page, re.S)[0]))
    assert "asked for FAIL, lowered to REVIEW" in rules and BAND_NOTE.strip() not in rules

    lowered(engine, ids["review"], "<img src=x onerror=alert(1)>", on="max_prob")
    page = c.get(f"/item/{ids['review']}").text
    assert "(highest max confidence 0.80 &lt; 0.9)" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    fail = unescape(
        re.search(r'<span id="why">(.*?)</span>', c.get(f"/item/{ids['fail']}").text)[1]
    )
    assert fail == "min_area asked for FAIL"  # a FAIL that stands says only that


# -- 7. which model judged it -------------------------------------------------------------


def test_the_item_names_its_model_and_its_registry_version(site):
    base, engine, ids = site
    c = Client(base)
    c.login("olga")
    model = unescape(
        re.search(r'<span id="model">(.*?)</span>\s', c.get(f"/item/{ids['fail']}").text)[1]
    )
    assert re.sub(r"<[^>]+>", "", model) == "model abababababab (not in the registry)"
    with connect(engine, write=True) as conn:  # registered, as `inspect model add` does
        conn.execute(sa.update(M).values(path="/store/m.onnx", version="<b>v2</b>"))
    page = c.get(f"/item/{ids['fail']}").text
    model = re.search(r'<span id="model">(.*?)</span>\s', page)[1]
    assert "&lt;b&gt;v2&lt;/b&gt;" in model and "<b>v2</b>" not in page
    assert unescape(re.sub(r"<[^>]+>", "", model)) == "model <b>v2</b> abababababab"
    assert f'title="sha256 {"ab" * 32}"' in model


# -- 5. a reopened item shows the labels in force -----------------------------------------


def test_a_reopened_item_shows_the_labels_of_the_decision_in_force(site):
    base, _, ids = site
    c = Client(base)
    c.login("olga")
    item = f"/item/{ids['review']}"
    r1, r2 = region_ids(c.get(item).text)
    form = {f"region-{r1}": "unsure", f"region-{r2}": "class:scratch", "seen": ""}
    c.post(item + "/decide", {"csrf": c.csrf(), "verdict": "PASS", **form})
    page = c.get(item + "?status=decided").text
    assert selected(page) == ["unsure", "class:scratch"]
    # the outlines show them too (a region marked unsure is drawn grey)
    assert re.findall(r'<g class="shape" data-n="\d" data-choice="([^"]+)"', page) == [
        "unsure",
        "class:scratch",
    ]


# -- the page in Chromium at 1366x800 -----------------------------------------------------


@pytest.fixture
def chromium():
    path = find_chromium()
    if path is None:
        pytest.skip(
            f"Chromium not found (chromium, chromium-browser, $INSPECT_CHROMIUM); {APT_HINT}"
        )
    return path


def log_in(b: Browser) -> None:
    b.wait("document.body.dataset.page === 'login'")
    b.js(
        "document.getElementById('name').value = 'olga';"
        f"document.getElementById('password').value = '{PASSWORD}';"
        "document.getElementById('login').click()"
    )
    b.wait("document.body.dataset.page === 'queue' && document.body.dataset.ready === '1'")


def opened(b: Browser, iid: int) -> None:
    b.wait(
        f"document.body.dataset.item === '{iid}' && document.body.dataset.ready === '1' "
        "&& !document.body.dataset.sent && document.getElementById('overlay').complete"
    )
    time.sleep(0.2)


LABELS = """[...document.querySelectorAll('#stage text')].map(t => {
  const box = t.previousElementSibling, r = t.getBoundingClientRect();
  return [Math.round(r.height), box && box.classList.contains('label-box') ?
    getComputedStyle(box).fill : null, getComputedStyle(t).fill]; })"""


@pytest.fixture
def page_1366(chromium, sqlite_url, tmp_path):
    """A square FAIL item and a 1600x1200 REVIEW item whose FAIL the band lowered, served; a
    Chromium window of 1366x800, logged in on the queue."""
    engine = make_engine(sqlite_url)
    big = [box_region("scratch", 300, 200, 400, 120), box_region("dent", 900, 700, 150, 150)]
    with Recorder(engine=engine) as rec:
        square = record_item(
            rec, tmp_path, 1, verdict="FAIL", shape=(300, 300), at=time.time() - 60
        )
        wide = record_item(rec, tmp_path, 2, regions=big, shape=(1200, 1600))
    lowered(engine, wide)
    add_user(engine, "olga")
    with (
        live_server(engine) as base,
        Browser(chromium, tmp_path / "profile", width=1366, height=800) as b,
    ):
        b.go(base + "/")
        log_in(b)
        yield b, base, {"square": square, "wide": wide}
    engine.dispose()


def menus(b: Browser) -> list[str]:
    return b.js("[...document.querySelectorAll('#regions select')].map(s => s.value)")


def test_the_queue_thumbnails_show_whole_pictures(page_1366):
    b, _, _ = page_1366
    fits = b.js(
        "[...document.querySelectorAll('img.thumb')].map(i => getComputedStyle(i).objectFit)"
    )
    assert fits == ["contain", "contain"]  # a square or tall picture is letterboxed, not cut


def test_the_keys_the_rules_and_the_buttons_are_above_the_fold(page_1366, tmp_path):
    b, base, ids = page_1366
    b.go(f"{base}/item/{ids['wide']}")
    opened(b, ids["wide"])
    b.screenshot(tmp_path / "item.png")
    fold = b.js("window.innerHeight")
    for part in ("keys", "rules", "pass", "fail", "verdict"):
        bottom = b.js(f"document.getElementById('{part}').getBoundingClientRect().bottom")
        assert 0 < bottom <= fold, part


def test_the_labels_on_the_picture_are_legible(page_1366):
    b, base, ids = page_1366
    b.go(f"{base}/item/{ids['wide']}")
    opened(b, ids["wide"])
    # the region numbers: 12 px or more on screen (not 14 of the image's 1600 pixels), on a
    # dark box, in a light colour
    found = b.js(LABELS)
    assert len(found) == 2
    for height, box, text in found:
        assert height >= 12 and box == "rgba(0, 0, 0, 0.78)" and text != "rgb(0, 0, 0)"
    b.key("d")  # a drawn mark's label too
    for key in (" ", *["ArrowRight"] * 10, " ", *["ArrowDown"] * 10, " ", "Enter"):
        b.key(key)
    b.wait("document.querySelectorAll('#marks .mark text').length === 1")
    found = b.js(LABELS)
    assert len(found) == 3 and all(h >= 12 and box == "rgba(0, 0, 0, 0.78)" for h, box, _ in found)


def test_a_saved_decision_is_confirmed_and_z_undoes_it(page_1366):
    b, base, ids = page_1366
    b.go(f"{base}/item/{ids['wide']}")
    opened(b, ids["wide"])
    b.key("j")
    b.key("x")  # the dent is no defect
    b.key("f")
    opened(b, ids["square"])
    saved = b.js("document.getElementById('saved').textContent.replace(/\\s+/g, ' ')")
    assert "Saved: FAIL for img0002.png — Undo Z" in saved
    b.key("z")
    opened(b, ids["wide"])
    assert menus(b) == ["auto", "not_defect"]  # what the operator chose, pending again
    assert b.js("!!document.getElementById('undone') && !document.getElementById('saved')")


def test_back_to_a_decided_item_shows_its_labels_now(page_1366):
    b, base, ids = page_1366
    b.go(f"{base}/item/{ids['wide']}")
    opened(b, ids["wide"])
    b.key("j")
    b.key("x")
    b.key("f")  # region 1 confirmed (as the verdict says), region 2 not a defect
    opened(b, ids["square"])
    b.js("history.back()")
    # the page as it stands now (not the one left behind, its menus as they were and its
    # form already sent): the decision's labels, and a decision can be taken again
    b.wait(
        f"document.body.dataset.item === '{ids['wide']}' && document.body.dataset.ready === '1' "
        "&& !document.body.dataset.sent",
        timeout=10,
    )
    assert menus(b) == ["confirm", "not_defect"]
    assert b.js("!!document.getElementById('latest')")
