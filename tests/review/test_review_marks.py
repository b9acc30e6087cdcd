"""The regions operators draw (revision 0007), on SQLite and PostgreSQL: recorded with their
decision and never edited, read back with it, refused whole with a message that names the mark
and the problem; the decision form's ``marks`` field; the migration up and down."""

from __future__ import annotations

import json
import math

import pytest
import sqlalchemy as sa
from db_support import make_inspection, region

from inspect_db.engine import connect, make_engine
from inspect_db.errors import ReviewError
from inspect_db.migrate import alembic_config, head_revision, upgrade
from inspect_db.records.recorder import Recorder
from inspect_review.drawn import parse_marks
from inspect_review.labels import choosable, resolve
from inspect_review.storage.marks import given_names, points_of, points_text
from inspect_review.storage.queue import item
from inspect_review.storage.store import add_user, record_decision
from inspect_review.storage.types import DecisionIn, Mark, RegionLabel

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
CLASSES = ["background", "scratch", "dent"]
W, H = 640, 480  # make_inspection's image


def count(engine, table: str) -> int:
    with engine.connect() as c:
        return c.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


@pytest.fixture
def db(db_url):
    """Two FAIL inspections with one region each, and an operator."""
    engine = make_engine(db_url)
    with Recorder(engine=engine) as rec:
        for i in (1, 2):
            rec.record(make_inspection(i, verdict="FAIL", regions=[region("scratch", 40, 1)]))
    user = add_user(engine, "olga", "operator", HASH)
    yield engine, user
    engine.dispose()


def regions_of(engine, iid: int):
    with connect(engine) as conn:
        return item(conn, iid).regions


POLY = Mark("polygon", ((100, 100), (200.25, 100), (200, 180.5)), "defect", "crack")
STROKE = Mark("stroke", ((10, 400), (300, 400)), "defect", "scratch", 1, 4.0)


def test_marks_are_recorded_with_their_decision_and_read_back(db):
    engine, user = db
    (r,) = regions_of(engine, 1)
    redrawn = Mark("polygon", ((4, 5), (14, 5), (14, 15), (4, 15)), "defect", "dent", 2, None, r.id)
    first = record_decision(
        engine,
        DecisionIn(
            1,
            user.id,
            "FAIL",
            (RegionLabel(r.id, "defect", "dent", 2),),
            marks=(POLY, STROKE, redrawn),
        ),
    )
    second = record_decision(
        engine, DecisionIn(1, user.id, "PASS", (RegionLabel(r.id, "not_defect"),), "", first)
    )
    with connect(engine) as conn:
        view = item(conn, 1)
        rows = conn.execute(
            sa.text("SELECT review_id, number, kind, points, width FROM review_mark ORDER BY id")
        ).all()
    assert [d.id for d in view.decisions] == [first, second]
    old, new = view.decisions
    assert new.marks == [] and new.supersedes_id == first  # a new decision draws its own
    assert old.marks == [
        Mark("polygon", ((100.0, 100.0), (200.2, 100.0), (200.0, 180.5)), "defect", "crack"),
        STROKE,
        redrawn,
    ]  # a tenth of a pixel is kept (200.25 -> 200.2)
    assert [(r.review_id, r.number, r.kind, r.width) for r in rows] == [
        (first, 1, "polygon", None),
        (first, 2, "stroke", 4.0),
        (first, 3, "polygon", None),
    ]
    assert rows[0].points == "[[100,100],[200.2,100],[200,180.5]]"  # compact JSON of numbers
    assert old.user == "olga" and old.decided_at is not None  # who drew them, and when
    with connect(engine) as conn:
        # the names that are no class of the recipe's model, of recent decisions
        assert given_names(conn, "industrial", "steel") == ["crack"]
        assert given_names(conn, "industrial", "tile") == []
        assert given_names(conn, "industrial", "steel", days=-1) == []


def test_bad_marks_are_refused_whole_and_say_what_is_wrong(db):
    engine, user = db
    (r1,) = regions_of(engine, 1)
    (r2,) = regions_of(engine, 2)
    square = ((0, 0), (10, 0), (10, 10), (0, 10))
    cases = [
        (
            (Mark("polygon", ((0, 0), (700, 10), (0, 20)), "unsure"),),
            r"drawn mark 1 \(polygon\): point 2 at \(700, 10\) lies outside the image "
            r"\(640x480 px\)",
        ),
        (
            (POLY, Mark("stroke", ((5, -1),), "unsure", width=3.0)),
            r"drawn mark 2 \(brush stroke\): point 1 at \(5, -1\) lies outside",
        ),
        ((Mark("polygon", ((0, 0), (10, 10)), "unsure"),), r"has 2 points: give 3 to 400"),
        (
            (Mark("polygon", ((0, 0), (10, 10), (20, 20)), "unsure"),),
            "encloses no area",
        ),
        ((Mark("stroke", ((1, 1),), "unsure", width=0.5),), r"brush width 0.5 px; give 1 to 64"),
        ((Mark("stroke", ((1, 1),), "unsure", width=65.0),), "brush width 65 px"),
        ((Mark("stroke", ((math.nan, 1),), "unsure", width=2.0),), "point 1 is not a number"),
        ((Mark("stroke", ((1, 1),) * 1001, "unsure", width=2.0),), "1001 points: give 1 to 1000"),
        ((Mark("polygon", square, "unsure"),) * 41, "41 drawn marks: a decision takes at most 40"),
        (
            (Mark("stroke", ((1, 1),) * 1000, "unsure", width=2.0),) * 7,
            "7000 points in all, over 6000",
        ),
        (
            (Mark("polygon", square, "defect", "crack", replaces_region_id=r2.id),),
            f"replaces region id {r2.id}, which is not a region of inspection 1",
        ),
        (
            (
                Mark("polygon", square, "unsure", replaces_region_id=r1.id),
                Mark("polygon", square, "unsure", replaces_region_id=r1.id),
            ),
            f"drawn mark 2 \\(polygon\\) and drawn mark 1 both replace region id {r1.id}",
        ),
        (
            (Mark("polygon", square, "defect", "cr\x00ack"),),
            "drawn mark 1 .*control character",
        ),
        ((Mark("polygon", square, "defect", "x" * 41),), "over 40 characters"),
        ((Mark("polygon", square, "defect", "Background"),), "background is no defect"),
    ]
    for marks, words in cases:
        with pytest.raises(ReviewError, match=words):
            record_decision(
                engine, DecisionIn(1, user.id, "FAIL", (RegionLabel(r1.id, "unsure"),), marks=marks)
            )
    assert count(engine, "review") == count(engine, "review_mark") == 0
    for bad in (
        lambda: Mark("circle", square, "unsure"),
        lambda: Mark("polygon", square, "defect"),  # a defect names its class
        lambda: Mark("polygon", square, "unsure", "crack"),
        lambda: Mark("stroke", square, "unsure"),  # a stroke has a width
        lambda: Mark("polygon", square, "unsure", width=2.0),
    ):
        with pytest.raises(ValueError):
            bad()


def test_deleting_an_inspection_deletes_the_marks_of_its_decisions(db):
    engine, user = db
    (r,) = regions_of(engine, 1)
    record_decision(
        engine, DecisionIn(1, user.id, "FAIL", (RegionLabel(r.id, "unsure"),), marks=(POLY,))
    )
    assert count(engine, "review_mark") == 1
    with engine.begin() as c:
        c.execute(sa.text("DELETE FROM inspection WHERE id = 1"))
    assert count(engine, "review") == count(engine, "review_mark") == 0


def test_stored_points_are_read_tolerantly():
    assert points_text([(1.0, 2.04), (3.25, 4.0)]) == "[[1,2],[3.2,4]]"
    assert points_of("[[1,2],[3.5,4]]") == ((1.0, 2.0), (3.5, 4.0))
    assert points_of('[[1,2],[true,1],[1],["a",2],[3,4]]') == ((1.0, 2.0), (3.0, 4.0))
    assert points_of("not json") == points_of(None) == points_of("{}") == ()


# -- the decision form's marks field --------------------------------------------------------


def test_the_forms_marks_field_is_read_and_checked(db):
    engine, user = db
    with connect(engine) as conn:
        view = item(conn, 1)
    (r,) = view.regions
    offered = choosable(view, CLASSES)
    sent = [
        {"kind": "polygon", "points": [[1, 1], [9, 1], [9, 9]], "choice": "class:Crack "},
        {"kind": "stroke", "points": [[1, 1]], "width": 3, "choice": "class:DENT"},
        {"kind": "polygon", "points": [[1, 1], [9, 1], [9, 9]], "choice": "unsure", "replaces": 0},
    ]
    sent[2]["replaces"] = r.id
    marks = parse_marks(json.dumps(sent), view, CLASSES, offered)
    assert [(m.kind, m.label, m.class_name, m.class_id, m.width) for m in marks] == [
        ("polygon", "defect", "Crack", None, None),  # a new name, spaces around it dropped
        ("stroke", "defect", "dent", 2, 3.0),  # the recipe's class, whatever its case
        ("polygon", "unsure", None, None, None),
    ]
    # the region a mark redraws takes the mark's label, whatever its own field says
    labels = resolve(view, "FAIL", {f"region-{r.id}": "confirm"}, CLASSES, marks)
    assert [(x.region_id, x.label) for x in labels] == [(r.id, "unsure")]
    rid = record_decision(engine, DecisionIn(1, user.id, "FAIL", labels, marks=marks))
    with connect(engine) as conn:
        assert item(conn, 1).latest.id == rid and len(item(conn, 1).latest.marks) == 3
        assert "Crack" in choosable(item(conn, 1), CLASSES)  # offered from now on
    assert parse_marks("", view, CLASSES, offered) == ()

    poly = {"kind": "polygon", "points": [[1, 1], [9, 1], [9, 9]], "choice": "unsure"}
    for text, words in (
        ("[{", "not JSON"),
        ('{"kind": "polygon"}', "not a list"),
        ("[1]", "drawn mark 1 is not an object"),
        (json.dumps([{**poly, "kind": "circle"}]), "kind 'circle'"),
        (json.dumps([{**poly, "points": [[1, 1], [2]]}]), "point 2 is not a pair of numbers"),
        (json.dumps([{**poly, "points": [[1, True]]}]), "point 1 is not a pair"),
        ('[{"kind": "stroke", "points": [[1, NaN]], "width": 2}]', "not JSON"),
        (json.dumps([{**poly, "points": [[1, 10**400]]}]), "point 1 is not a pair"),
        (json.dumps([{**poly, "kind": "stroke"}]), "drawn mark 1 \\(brush stroke\\) has no width"),
        (json.dumps([poly, {**poly, "choice": ""}]), "drawn mark 2 has no class"),
        (json.dumps([{**poly, "choice": "confirm"}]), "drawn mark 1 has no class"),
        (json.dumps([{**poly, "choice": "class:\u202e"}]), "drawn mark 1: class name"),
        (json.dumps([{**poly, "replaces": True}]), "not a region of this item"),
        (json.dumps([{**poly, "replaces": 987654}]), "not a region of this item"),
        (json.dumps([poly] * 41), "41 drawn marks"),
        ("[" + " " * 200_001 + "]", "over 200000"),
    ):
        with pytest.raises(ReviewError, match=words):
            parse_marks(text, view, CLASSES, offered)


# -- the migration --------------------------------------------------------------------------


AT = "2026-12-01 10:00:00"


def _decision_at_0006(engine) -> None:
    """An inspection with a region and a decision on it, written as inspect at 0006 wrote
    them."""
    statements = [
        "INSERT INTO station (name, plugin, recipe, config_hash, created_at) "
        "VALUES ('line-1', 'industrial', 'steel', '', :at)",
        "INSERT INTO inspection (station_id, plugin, recipe, source, image_sha256, width, "
        "height, inspected_at, inspected_hour, latency_ms, verdict, fired, thresholds, "
        "n_regions, defect_area_px) VALUES (1, 'industrial', 'steel', 'x.png', :sha, 640, 480, "
        ":at, 0, 1.0, 'FAIL', '[]', '{}', 1, 40)",
        "INSERT INTO region (inspection_id, station_id, inspected_at, verdict, plugin, recipe, "
        "class_id, class_name, bbox_x, bbox_y, bbox_w, bbox_h, area_px, centroid_x, centroid_y, "
        "max_prob, mean_prob, polygon) VALUES (1, 1, :at, 'FAIL', 'industrial', 'steel', 1, "
        "'scratch', 5, 6, 7, 8, 40, 8, 9, 0.9, 0.8, '[[5, 6], [12, 6], [12, 14]]')",
        "INSERT INTO review_user (name, role, password_hash, created_at) "
        "VALUES ('olga', 'operator', 'h', :at)",
        "INSERT INTO review (inspection_id, user_id, decided_at, verdict, note, station_id, "
        "inspected_at, model_verdict) VALUES (1, 1, :at, 'FAIL', '', 1, :at, 'FAIL')",
        "INSERT INTO review_region (review_id, region_id, label, class_name) "
        "VALUES (1, 1, 'defect', 'scratch')",
    ]
    with engine.begin() as c:
        for sql in statements:
            c.execute(sa.text(sql), {"at": AT, "sha": "1" * 64})


def test_the_migration_adds_review_mark_and_takes_it_away_keeping_the_decisions(db_url):
    from alembic import command

    engine = make_engine(db_url)
    assert upgrade(engine, "0006") == (None, "0006")
    _decision_at_0006(engine)
    assert upgrade(engine) == ("0006", head_revision())
    with connect(engine) as conn:
        view = item(conn, 1)
    assert view.latest is not None and view.latest.marks == []  # decided before: no marks
    user_id = 1
    (r,) = view.regions
    record_decision(
        engine,
        DecisionIn(1, user_id, "FAIL", (RegionLabel(r.id, "unsure"),), "", view.latest.id, (POLY,)),
    )
    assert count(engine, "review_mark") == 1
    with engine.begin() as c:
        cfg = alembic_config()
        cfg.attributes["connection"] = c
        command.downgrade(cfg, "0006")
    with engine.connect() as c:
        tables = set(sa.inspect(c).get_table_names())
    assert "review_mark" not in tables
    assert count(engine, "review") == 2 and count(engine, "review_region") == 2
    assert upgrade(engine) == ("0006", head_revision())  # and up again, empty
    assert count(engine, "review_mark") == 0
    engine.dispose()
