"""Operator review in the records database (revision 0004), on SQLite and PostgreSQL: the queue's
order and filters, decisions that are only ever added, and the checks that keep a bad
decision out."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from db_support import make_inspection, region

from inspect_db.engine import connect, make_engine
from inspect_db.errors import DecisionConflict, ReviewError, UnknownItem
from inspect_db.models import utcnow
from inspect_db.records.recorder import Recorder
from inspect_review.storage.queue import arrived_since, item, next_item, queue, queue_count
from inspect_review.storage.store import add_user, get_user, record_decision, set_disabled
from inspect_review.storage.types import DecisionIn, QueueFilters, RegionLabel

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"  # stored as given; never checked here


@pytest.fixture
def db(db_url):
    """Inspections of two stations, recorded an hour apart (ids 1..6 in that order)."""
    engine = make_engine(db_url)
    t0 = time.time() - 3600 * 6
    with Recorder(engine=engine) as rec:
        for i, (station, verdict, cls, recipe) in enumerate(
            [
                ("line-1", "FAIL", "scratch", "steel"),
                ("line-1", "REVIEW", "dent", "steel"),
                ("line-2", "FAIL", "dent", "steel"),
                ("line-1", "PASS", None, "steel"),
                ("line-2", "REVIEW", "scratch", "tile"),
                ("line-1", "ERROR", None, "steel"),
            ],
            1,
        ):
            regs = [region(cls, 40, 1 if cls == "scratch" else 2)] if cls else []
            rec.record(
                make_inspection(
                    i,
                    station=station,
                    verdict=verdict,
                    regions=regs,
                    at=t0 + 3600 * i,
                    recipe=recipe,
                )
            )
    user = add_user(engine, "olga", "operator", HASH)
    yield engine, user
    engine.dispose()


def ids(items) -> list[int]:
    return [i.id for i in items]


def decide(engine, user, iid: int, verdict: str, seen: int | None = None, **given) -> int:
    """Record a decision on ``iid``: region N labelled ``given["rN"]`` (its region id is
    filled in), the others confirmed as the model said."""
    with connect(engine) as conn:
        view = item(conn, iid)
    labels = []
    for r in view.regions:
        lab = given.get(f"r{r.number}")
        labels.append(
            RegionLabel(r.id, lab.label, lab.class_name)
            if lab
            else RegionLabel(r.id, "defect", r.class_name)
        )
    return record_decision(engine, DecisionIn(iid, user.id, verdict, tuple(labels), "", seen))


def test_the_queue_is_review_first_then_fail_newest_first_and_filters(db):
    engine, user = db
    with connect(engine) as conn:
        assert ids(queue(conn, QueueFilters())) == [5, 2, 3, 1]  # no PASS, no ERROR
        assert queue_count(conn, QueueFilters()) == 4
        assert ids(queue(conn, QueueFilters.parse(station="line-2"))) == [5, 3]
        assert ids(queue(conn, QueueFilters.parse(recipe="tile"))) == [5]
        assert ids(queue(conn, QueueFilters.parse(class_name="dent"))) == [2, 3]
        since = (utcnow() - timedelta(hours=1, minutes=30)).isoformat()
        assert ids(queue(conn, QueueFilters.parse(since=since))) == [5]
        assert ids(queue(conn, QueueFilters.parse(station="nowhere"))) == []
        assert next_item(conn, QueueFilters(), 5) == 2
        assert next_item(conn, QueueFilters(), 1) == 5  # past the end: from the top
        assert next_item(conn, QueueFilters(), None) == 5
    decide(engine, user, 2, "FAIL")
    with connect(engine) as conn:
        assert ids(queue(conn, QueueFilters())) == [5, 3, 1]  # decided: out of the pending queue
        decided = queue(conn, QueueFilters.parse(status="decided"))
        assert ids(decided) == [2] and (decided[0].decided, decided[0].decided_by) == (
            "FAIL",
            "olga",
        )
        assert ids(queue(conn, QueueFilters.parse(status="all"))) == [5, 2, 3, 1]
        got = arrived_since(conn, QueueFilters(), 3)
        assert [i for i in ids(got.items) if i > 3] == [5] and got.last == 6


def test_a_poll_takes_a_replayed_backlog_in_chunks_and_rows_committed_late(db):
    engine, _ = db
    with connect(engine) as conn:
        first = arrived_since(conn, QueueFilters(), 0, limit=2)  # 4 queue items, 6 ids
        assert ids(first.items) == [2, 1] and first.last == 2  # oldest first, then the rest
        second = arrived_since(conn, QueueFilters(), first.last, limit=2)
        assert {3, 5} <= set(ids(second.items)) and second.last == 5
        third = arrived_since(conn, QueueFilters(), second.last, limit=2)
        assert [i for i in ids(third.items) if i > 5] == [] and third.last == 6
        # a row under the page's last id (committed after a higher one) is asked again
        assert 3 in ids(arrived_since(conn, QueueFilters(), 6).items)


def test_decisions_are_appended_and_never_edit_the_inspection(db):
    engine, user = db
    first = decide(engine, user, 3, "FAIL")
    second = decide(engine, user, 3, "PASS", seen=first, r1=RegionLabel(0, "not_defect"))
    with connect(engine) as conn:
        view = item(conn, 3)
        rows = conn.execute(
            sa.text("SELECT id, verdict, supersedes_id FROM review ORDER BY id")
        ).all()
    assert view.verdict == "FAIL"  # the model's verdict stays
    assert [tuple(r) for r in rows] == [(first, "FAIL", None), (second, "PASS", first)]
    assert [d.verdict for d in view.decisions] == ["FAIL", "PASS"] and view.latest.id == second
    (lab,) = view.decisions[0].labels.values()
    assert (lab.label, lab.class_name) == ("defect", "dent")
    (lab,) = view.latest.labels.values()
    assert (lab.label, lab.class_name) == ("not_defect", None)


def test_a_decision_taken_meanwhile_is_a_conflict_and_nothing_is_written(db):
    engine, user = db
    decide(engine, user, 3, "FAIL")
    with pytest.raises(DecisionConflict, match="olga decided FAIL"):
        decide(engine, user, 3, "PASS", seen=None)  # loaded before that decision
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM review")).scalar_one() == 1


def test_bad_decisions_are_refused_whole(db):
    engine, user = db
    with connect(engine) as conn:
        (r3,) = item(conn, 3).regions
        (r5,) = item(conn, 5).regions
    cases = [
        (DecisionIn(3, user.id, "FAIL", ()), "have no label"),
        (
            DecisionIn(
                3, user.id, "FAIL", (RegionLabel(r3.id, "unsure"), RegionLabel(r5.id, "unsure"))
            ),
            "not regions of inspection 3",
        ),
        (DecisionIn(3, user.id, "FAIL", (RegionLabel(r3.id, "unsure"),) * 2), "labelled twice"),
        (DecisionIn(6, user.id, "FAIL", ()), "could not be inspected"),
        (DecisionIn(3, user.id, "FAIL", (RegionLabel(r3.id, "unsure"),), "x" * 2001), "note"),
        (DecisionIn(3, 999, "FAIL", (RegionLabel(r3.id, "unsure"),)), "disabled"),
    ]
    for d, words in cases:
        with pytest.raises(ReviewError, match=words):
            record_decision(engine, d)
    with pytest.raises(UnknownItem):
        record_decision(engine, DecisionIn(999, user.id, "PASS", ()))
    with pytest.raises(ValueError):
        DecisionIn(3, user.id, "REVIEW", ())
    with pytest.raises(ValueError):
        RegionLabel(r3.id, "defect")  # a defect names its class
    set_disabled(engine, "olga", True)
    with pytest.raises(ReviewError, match="disabled"):
        record_decision(engine, DecisionIn(3, user.id, "FAIL", (RegionLabel(r3.id, "unsure"),)))
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM review")).scalar_one() == 0
        assert c.execute(sa.text("SELECT count(*) FROM review_region")).scalar_one() == 0


def test_users_are_unique_and_have_a_role(db):
    engine, _ = db
    with pytest.raises(ReviewError, match="exists already"):
        add_user(engine, "olga", "engineer", HASH)
    with pytest.raises(ReviewError, match="user name"):
        add_user(engine, "bad name!", "operator", HASH)
    with pytest.raises(ReviewError, match="role"):
        add_user(engine, "erik", "admin", HASH)
    with pytest.raises(UnknownItem, match="user add"):
        get_user(engine, "nobody")
    assert get_user(engine, "olga").role == "operator"


def test_deleting_an_inspection_deletes_its_decisions(db):
    engine, user = db
    decide(engine, user, 3, "FAIL")
    with engine.begin() as c:
        c.execute(sa.text("DELETE FROM inspection WHERE id = 3"))
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM review")).scalar_one() == 0
        assert c.execute(sa.text("SELECT count(*) FROM review_region")).scalar_one() == 0
