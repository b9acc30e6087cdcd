"""An undone decision is no decision anywhere: the report's review figures (queue, stations,
days, classes), its corrections per model version and the operators' verdicts the backtest
reads treat an item whose latest ``review`` row is an undo as not reviewed, never count the
undo row itself, and never bring back a decision the undone one superseded. They agree with
the review page's queue. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from db_support import make_inspection, region

from inspect_db.engine import connect, make_engine
from inspect_db.records.decisions import human_verdicts
from inspect_db.records.recorder import Recorder
from inspect_db.reports.filters import ReportFilters
from inspect_db.reports.query import build_report
from inspect_db.tables import RV, I
from inspect_review.storage.queue import item, queue
from inspect_review.storage.store import add_user, record_decision
from inspect_review.storage.types import DecisionIn, QueueFilters, RegionLabel
from inspect_review.storage.undo import record_undo

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
SCRATCH, NOT_DEFECT = ("defect", "scratch"), ("not_defect", None)


def at(day: int) -> float:
    return datetime(2026, 11, day, 9, tzinfo=UTC).timestamp()


class Undos:
    """Four inspections, each with one region, decided and undone by one operator."""

    def __init__(self, engine):
        self.engine = engine
        self.user = add_user(engine, "olga", "operator", HASH).id
        self.ids: dict[int, int] = {}

    def decide(self, i: int, verdict: str, label: tuple[str, str | None], seen=None) -> int:
        iid = self.ids[i]
        with connect(self.engine) as conn:
            (reg,) = item(conn, iid).regions
        given = (RegionLabel(reg.id, *label),)
        return record_decision(self.engine, DecisionIn(iid, self.user, verdict, given, "", seen))

    def undo(self, i: int, review_id: int) -> int:
        return record_undo(self.engine, self.ids[i], review_id, self.user)


@pytest.fixture
def undos(db_url):
    """1: a FAIL confirmed (in force). 2: a FAIL overturned to PASS, then undone (pending).
    3: a REVIEW decided FAIL, undone, decided PASS (in force: PASS). 4: a REVIEW decided PASS,
    decided again FAIL, that undone (pending: the PASS it superseded does not come back)."""
    engine = make_engine(db_url)
    plan = [  # i: station, model verdict, day, region class
        (1, "a", "FAIL", 27, "scratch"),
        (2, "a", "FAIL", 27, "scratch"),
        (3, "b", "REVIEW", 28, "dent"),
        (4, "b", "REVIEW", 28, "dent"),
    ]
    with Recorder(engine=engine) as rec:
        for i, st, verdict, day, cls in plan:
            regs = [region(cls, 30, 1 if cls == "scratch" else 2)]
            rec.record(make_inspection(i, station=st, verdict=verdict, regions=regs, at=at(day)))
    u = Undos(engine)
    with connect(engine) as conn:
        rows = conn.execute(sa_ids()).all()
    u.ids = {int(r.image_sha256, 16): int(r.id) for r in rows}
    u.decide(1, "FAIL", SCRATCH)
    u.undo(2, u.decide(2, "PASS", NOT_DEFECT))
    undo3 = u.undo(3, u.decide(3, "FAIL", ("defect", "dent")))
    u.decide(3, "PASS", NOT_DEFECT, seen=undo3)
    first4 = u.decide(4, "PASS", NOT_DEFECT)
    u.undo(4, u.decide(4, "FAIL", ("defect", "dent"), seen=first4))
    yield u
    engine.dispose()


def sa_ids():
    return I.select().with_only_columns(I.c.id, I.c.image_sha256)


def test_the_fixture_holds_three_undo_rows_and_the_page_lists_two_items_decided(undos):
    with connect(undos.engine) as conn:
        n_undo = conn.execute(RV.select().where(RV.c.model_verdict == "UNDO")).all()
        decided = queue(conn, QueueFilters.parse(status="decided"))
    assert len(n_undo) == 3
    assert {q.id: q.decided for q in decided} == {undos.ids[1]: "FAIL", undos.ids[3]: "PASS"}


def test_review_figures_count_no_undone_item_and_no_undo_row(undos):
    r = build_report(undos.engine, ReportFilters()).to_dict()["review"]
    assert r["queue"] == {
        "REVIEW": {"reviewed": 1, "pending": 1},
        "FAIL": {"reviewed": 1, "pending": 1},
    }
    assert r["stations"] == [
        {
            "station": "a",
            "reviewed": 1,
            "fail_confirmed": 1,
            "fail_overturned": 0,  # item 2's overturn was undone
            "review_to_pass": 0,
            "review_to_fail": 0,
            "agreement": 1.0,
        },
        {
            "station": "b",
            "reviewed": 1,
            "fail_confirmed": 0,
            "fail_overturned": 0,
            "review_to_pass": 1,  # item 3's final PASS; item 4's PASS stays superseded
            "review_to_fail": 0,
            "agreement": None,
        },
    ]
    days = [(d["day"], d["reviewed"], d["fail_overturned"], d["review_to_pass"]) for d in r["days"]]
    assert days == [("2026-11-27", 1, 0, 0), ("2026-11-28", 1, 0, 1)]
    classes = {c["class"]: (c["regions"], c["confirmed"], c["not_defect"]) for c in r["classes"]}
    assert classes == {"scratch": (1, 1, 0), "dent": (1, 0, 1)}


def test_corrections_flag_no_undo_as_a_corrected_verdict(undos):
    (row,) = build_report(undos.engine, ReportFilters()).to_dict()["review"]["corrections"]
    assert (row["inspections"], row["reviewed"], row["corrected"]) == (4, 2, 1)
    assert row["reasons"] == {"verdict": 1, "regions": 1, "drawn": 0}  # item 3: REVIEW -> PASS
    assert row["share_of_reviewed"] == 0.5


def test_an_undone_item_has_no_human_verdict_for_the_backtest(undos):
    ids = undos.ids
    got = human_verdicts(undos.engine, [ids[1], ids[2], ids[3], ids[4], max(ids.values()) + 1])
    assert got == {ids[1]: "FAIL", ids[3]: "PASS"}
    assert human_verdicts(undos.engine, [ids[2], ids[4]]) == {}
