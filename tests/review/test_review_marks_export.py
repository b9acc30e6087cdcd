"""Drawn marks in the exported masks: a polygon's pixels get its class, a brush stroke of width
w covers a line w wide, a mark marked not a defect leaves background, a redrawn outline takes
the region's place; names operators gave become classes after the recipe's; a good-only
recipe's export holds the named classes and the good images, and leaves out (and counts) an
image whose defect is still "anomaly"."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from review_kit import box_region, record_item

from inspect_core.data.datasets import open_dataset
from inspect_db.engine import connect, make_engine
from inspect_db.errors import ReviewError
from inspect_db.records.recorder import Recorder
from inspect_review.commands import review_group
from inspect_review.export import export_dataset
from inspect_review.labels import resolve
from inspect_review.masks import review_mask
from inspect_review.storage.export import ExportFilters, LabelledRegion
from inspect_review.storage.queue import item
from inspect_review.storage.store import add_user, record_decision
from inspect_review.storage.types import DecisionIn, Mark

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
CLASSES = ["background", "scratch", "dent"]
GOOD_ONLY = {"classes": ["background", "anomaly"], "sha256": "ab" * 32, "kind": "anomaly"}


def box(x: int, y: int, w: int, h: int) -> tuple[tuple[float, float], ...]:
    return ((x, y), (x + w, y), (x + w, y + h), (x, y + h))


def region(rid: int, label: str, x: int, y: int, w: int, h: int, cls: str | None = None):
    poly = [[x, y], [x + w - 1, y], [x + w - 1, y + h - 1], [x, y + h - 1]]
    return LabelledRegion(rid, poly, (x, y, w, h), "scratch", label, cls)


# -- masks ---------------------------------------------------------------------------------


def test_a_drawn_polygon_gets_its_class_and_a_stroke_covers_its_width():
    poly = Mark("polygon", ((10, 10), (30, 10), (30, 20)), "defect", "dent")
    stroke = Mark("stroke", ((5, 40), (55, 40)), "defect", "scratch", width=5.0)
    m = review_mask((60, 60), "FAIL", [], CLASSES, [poly, stroke])
    inside = np.zeros((60, 60), np.uint8)
    cv2.fillPoly(inside, [np.array([[10, 10], [30, 10], [30, 20]], np.int32)], 1)
    assert (m[inside == 1] == 2).all() and m[12, 28] == 2 and m[18, 12] == 255
    column = m[:, 30]  # across the stroke: 5 pixels of scratch, centred on y = 40
    assert list(np.flatnonzero(column == 1)) == [38, 39, 40, 41, 42]
    assert (m[38:43, 5:56] == 1).all()  # along its whole length
    assert m[40, 0] == 255 and m[40, 59] == 255  # not past its round ends
    assert set(np.unique(m)) == {1, 2, 255}
    dab = Mark("stroke", ((10, 10),), "defect", "dent", width=3.0)  # one click of the brush
    assert np.argwhere(review_mask((20, 20), "FAIL", [], CLASSES, [dab]) == 2).tolist() == [
        [y, x] for y in (9, 10, 11) for x in (9, 10, 11)
    ]


def test_marks_are_scaled_to_the_masks_frame_and_overlap_as_judged():
    """Marks are in the recorded image's pixels; a recipe that resized the image found its
    regions (and gets its mask) in a smaller frame."""
    half = review_mask(
        (30, 40),
        "FAIL",
        [],
        CLASSES,
        [Mark("stroke", ((0, 20), (80, 20)), "defect", "dent", width=4.0)],
        scale=(0.5, 0.5),
    )
    assert list(np.flatnonzero(half[:, 20] == 2)) == [9, 10, 11]  # 4 px wide -> 2 (+1 edge)
    regions = [region(1, "defect", 0, 0, 20, 20, "dent"), region(2, "not_defect", 30, 0, 10, 10)]
    marks = [
        Mark("polygon", box(2, 2, 6, 6), "not_defect"),  # inside the dent: the operator drew
        Mark("polygon", box(12, 12, 6, 6), "unsure"),  # background and unsure over a region
        Mark("polygon", box(32, 2, 4, 4), "defect", "scratch"),  # a defect inside a false alarm
    ]
    m = review_mask((40, 40), "FAIL", regions, CLASSES, marks)
    # a region's defect class wins over background and unsure drawn on it, a drawn defect over
    # the region marked not a defect
    assert m[5, 5] == 2 and m[15, 15] == 2 and m[34, 34] == 255
    assert m[4, 34] == 1 and m[1, 31] == 0
    alone = review_mask((40, 40), "FAIL", [], CLASSES, marks)
    assert alone[5, 5] == 0 and alone[15, 15] == 255 and alone[20, 30] == 255


def test_a_redrawn_outline_replaces_the_regions_and_the_rest_of_it_is_background():
    regions = [region(7, "defect", 0, 0, 20, 20, "dent")]
    tighter = Mark(
        "stroke", ((2, 10), (18, 10)), "defect", "scratch", width=3.0, replaces_region_id=7
    )
    m = review_mask((30, 30), "FAIL", regions, CLASSES, [tighter])
    assert m[10, 10] == 1 and m[2, 2] == 0 and m[25, 25] == 255
    assert 2 not in np.unique(m)  # the model's outline is gone from this decision's mask


def test_pass_is_all_background_but_what_is_marked_unsure_and_unknown_names_are_refused():
    unsure = Mark("polygon", box(5, 5, 10, 10), "unsure")
    m = review_mask((30, 30), "PASS", [region(1, "not_defect", 20, 20, 5, 5)], CLASSES, [unsure])
    assert m[10, 10] == 255 and m[22, 22] == 0 and m[0, 29] == 0
    assert not review_mask((30, 30), "PASS", [], CLASSES).any()  # no marks: a good image
    with pytest.raises(ReviewError, match="drawn mark 1 is labelled 'rust'"):
        review_mask(
            (30, 30), "FAIL", [], CLASSES, [Mark("polygon", box(1, 1, 5, 5), "defect", "rust")]
        )
    named = review_mask(
        (30, 30),
        "FAIL",
        [region(1, "defect", 0, 0, 10, 10, "anomaly")],
        ["background", "crack"],
        [Mark("polygon", box(5, 5, 10, 10), "defect", "crack")],
        unnamed=frozenset({"anomaly"}),
    )
    assert named[2, 2] == 255 and named[7, 7] == 1  # the unnamed class ignored, a named one wins


# -- the export ----------------------------------------------------------------------------


def decide(engine, user, iid: int, verdict: str, form=None, marks=(), classes=CLASSES) -> None:
    with connect(engine) as conn:
        view = item(conn, iid)
    named = {
        f"region-{r.id}": v for r in view.regions for n, v in (form or {}).items() if n == r.number
    }
    labels = resolve(view, verdict, named, classes, tuple(marks))
    record_decision(engine, DecisionIn(iid, user.id, verdict, labels, marks=tuple(marks)))


def masks(out) -> dict[int, np.ndarray]:
    rows = list(csv.DictReader((out / "reviewed.csv").open()))
    return {
        int(r["inspection_id"]): cv2.imread(
            str(out / r["file"]).replace("/images/", "/masks/").rsplit(".", 1)[0] + ".png", 0
        )
        for r in rows
    }


def test_names_operators_gave_become_classes_after_the_recipes(sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    with Recorder(engine=engine) as rec:
        a = record_item(
            rec, tmp_path, 1, verdict="FAIL", regions=[box_region("scratch", 5, 5, 10, 6)]
        )
        b = record_item(rec, tmp_path, 2, verdict="REVIEW", regions=[])
    user = add_user(engine, "olga", "operator", HASH)
    decide(
        engine,
        user,
        a,
        "FAIL",
        {1: "class:rust"},
        [Mark("polygon", box(40, 30, 10, 10), "defect", "pit")],
    )
    decide(
        engine,
        user,
        b,
        "FAIL",
        marks=[Mark("stroke", ((2, 40), (30, 40)), "defect", "dent", 2, 2.0)],
    )
    out = tmp_path / "data"
    summary = export_dataset(engine, out, ExportFilters())
    assert summary.classes == ["background", "scratch", "dent", "pit", "rust"]
    assert summary.notes == ["classes operators named, after the recipe's: pit, rust"]
    assert json.loads((out / "classes.json").read_text())["classes"] == summary.classes
    m = masks(out)
    assert m[a][7, 10] == 4 and m[a][35, 45] == 3 and m[a][0, 63] == 255
    assert (m[b][40, 4:29] == 2).all() and m[b][20, 20] == 255
    ds = open_dataset(out, "train")  # reading a mask checks its values against the classes
    assert len(ds) == 2 and [ds.load(i)[1].shape for i in range(2)] == [(48, 64)] * 2
    engine.dispose()


@pytest.fixture
def good_only(sqlite_url, tmp_path):
    """A good-only recipe's reviewed images: two good, two with named defects, one whose
    defect is still "anomaly", one decided FAIL with nothing named."""
    engine = make_engine(sqlite_url)
    anomaly = [box_region("scratch", 5, 5, 10, 6)]
    ids = {}
    with Recorder(engine=engine) as rec:
        for i, key in enumerate(("good", "good2", "renamed", "drawn", "unnamed", "unsure"), 1):
            regions = [] if key.startswith("good") or key == "drawn" else anomaly
            ids[key] = record_item(
                rec,
                tmp_path / "archive",
                i,
                verdict="REVIEW",
                regions=regions,
                recipe="tiles",
                card=GOOD_ONLY,
            )
    with engine.begin() as c:  # the recorded regions are the model's: class anomaly
        c.execute(sa.text("UPDATE region SET class_name = 'anomaly', class_id = 1"))
    user = add_user(engine, "olga", "operator", HASH)
    classes = GOOD_ONLY["classes"]
    decide(engine, user, ids["good"], "PASS", classes=classes)
    decide(engine, user, ids["good2"], "PASS", classes=classes)
    decide(engine, user, ids["renamed"], "FAIL", {1: "class:chip"}, classes=classes)
    decide(
        engine,
        user,
        ids["drawn"],
        "FAIL",
        marks=[Mark("polygon", box(30, 20, 10, 10), "defect", "crack")],
        classes=classes,
    )
    decide(engine, user, ids["unnamed"], "FAIL", classes=classes)  # confirmed as "anomaly"
    decide(engine, user, ids["unsure"], "FAIL", {1: "unsure"}, classes=classes)
    yield engine, ids, tmp_path
    engine.dispose()


def test_a_good_only_recipe_exports_the_named_classes_and_the_good_images(good_only):
    engine, ids, tmp = good_only
    out = tmp / "data"
    summary = export_dataset(engine, out, ExportFilters())
    assert summary.classes == ["background", "chip", "crack"]
    assert summary.images == 4 and summary.unnamed == 2
    skipped = {s["inspection_id"]: s["why"] for s in summary.skipped}
    assert set(skipped) == {ids["unnamed"], ids["unsure"]}
    assert "still of class 'anomaly'" in skipped[ids["unnamed"]]
    assert "decided FAIL with no defect named" in skipped[ids["unsure"]]
    assert summary.notes[0].startswith("good-only recipe: the classes are those operators named")
    written = json.loads((out / "export.json").read_text())
    assert written["unnamed"] == 2 and written["notes"] == summary.notes
    m = masks(out)
    assert not m[ids["good"]].any() and not m[ids["good2"]].any()  # good images: background
    assert m[ids["renamed"]][7, 10] == 1 and m[ids["renamed"]][40, 60] == 255
    assert m[ids["drawn"]][25, 35] == 2
    ds = open_dataset(out, "train")  # what `inspect train --data` reads
    assert ds.classes == ["background", "chip", "crack"] and len(ds) == 4


def test_a_good_only_export_with_nothing_named_keeps_the_recipes_classes(good_only):
    engine, ids, tmp = good_only
    r = CliRunner().invoke(
        review_group,
        ["export", "--db", str(engine.url), "--out", str(tmp / "cli"), "--recipe", "tiles"],
    )
    assert r.exit_code == 0, r.output
    assert "left out 2 whose defects are not named" in r.output
    assert "good-only recipe: the classes are those operators named (chip, crack)" in r.output
    # only good images and an unnamed one: the two classes stay, so the folder still loads
    with engine.begin() as c:
        c.execute(
            sa.text("DELETE FROM inspection WHERE id IN (:a, :b)"),
            {"a": ids["renamed"], "b": ids["drawn"]},
        )
    plain = export_dataset(engine, tmp / "plain", ExportFilters())
    assert plain.classes == ["background", "anomaly"] and plain.images == 2
    assert "no class is named yet" in plain.notes[0]
    assert len(open_dataset(tmp / "plain", "train")) == 2
