"""The report's review figures: reviewed and pending, agreement of model and operator per
station and per class, overturned verdicts per day; the HTML report links to the review page
when one is configured. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from db_support import make_inspection, region
from rich.console import Console

from inspect_db.engine import connect, make_engine
from inspect_db.records.recorder import Recorder
from inspect_db.reports.cli import report as report_cmd
from inspect_db.reports.filters import ReportFilters
from inspect_db.reports.query import build_report
from inspect_db.reports.terminal import render_terminal
from inspect_review.storage.queue import item
from inspect_review.storage.store import add_user, record_decision
from inspect_review.storage.types import DecisionIn, RegionLabel

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


def at(day: int) -> float:
    return datetime(2026, 11, day, 9, tzinfo=UTC).timestamp()


@pytest.fixture
def reviewed(db_url):
    """Eight inspections on two stations and two days; six decided (one of them twice)."""
    engine = make_engine(db_url)
    plan = [  # station, model verdict, day, region classes
        ("a", "FAIL", 27, ["scratch", "dent"]),
        ("a", "FAIL", 27, ["scratch"]),
        ("a", "REVIEW", 28, ["dent"]),
        ("b", "REVIEW", 28, ["scratch"]),
        ("b", "FAIL", 28, ["dent"]),
        ("b", "REVIEW", 28, ["dent"]),
        ("a", "FAIL", 28, ["scratch"]),  # pending
        ("b", "PASS", 28, []),
    ]
    with Recorder(engine=engine) as rec:
        for i, (st, verdict, day, classes) in enumerate(plan, 1):
            regs = [
                region(c, 30, 1 if c == "scratch" else 2, x=5 + 20 * k)
                for k, c in enumerate(classes)
            ]
            rec.record(make_inspection(i, station=st, verdict=verdict, regions=regs, at=at(day)))
    user = add_user(engine, "olga", "operator", HASH)

    def decide(iid: int, verdict: str, *labels: tuple[str, str | None], seen=None) -> int:
        with connect(engine) as conn:
            regs = item(conn, iid).regions
        given = tuple(RegionLabel(r.id, lab, cls) for r, (lab, cls) in zip(regs, labels))
        return record_decision(engine, DecisionIn(iid, user.id, verdict, given, "", seen))

    decide(1, "FAIL", ("defect", "scratch"), ("not_defect", None))  # confirmed
    decide(2, "PASS", ("not_defect", None))  # FAIL overturned
    decide(3, "FAIL", ("defect", "scratch"))  # REVIEW -> FAIL, dent reclassed as scratch
    first = decide(4, "FAIL", ("defect", "scratch"))
    decide(4, "PASS", ("not_defect", None), seen=first)  # changed mind: only this one counts
    decide(5, "PASS", ("unsure", None))  # FAIL overturned
    decide(6, "PASS", ("not_defect", None))  # REVIEW -> PASS
    yield engine
    engine.dispose()


def test_review_figures(reviewed):
    r = build_report(reviewed, ReportFilters()).to_dict()["review"]
    assert r["queue"] == {
        "REVIEW": {"reviewed": 3, "pending": 0},
        "FAIL": {"reviewed": 3, "pending": 1},
    }
    stations = {s["station"]: s for s in r["stations"]}
    assert stations["a"] == {
        "station": "a",
        "reviewed": 3,
        "fail_confirmed": 1,
        "fail_overturned": 1,
        "review_to_pass": 0,
        "review_to_fail": 1,
        "agreement": 0.5,
    }
    assert stations["b"]["fail_overturned"] == 1 and stations["b"]["review_to_pass"] == 2
    assert stations["b"]["agreement"] == 0.0
    classes = {c["class"]: c for c in r["classes"]}
    assert classes["scratch"] == {
        "class": "scratch",
        "regions": 3,
        "confirmed": 1,
        "reclassed": 0,
        "not_defect": 2,
        "unsure": 0,
        "agreement": round(1 / 3, 4),
    }
    assert classes["dent"] == {
        "class": "dent",
        "regions": 4,
        "confirmed": 0,
        "reclassed": 1,
        "not_defect": 2,
        "unsure": 1,
        "agreement": 0.0,
    }
    assert [
        (d["day"], d["reviewed"], d["fail_overturned"], d["review_to_pass"]) for d in r["days"]
    ] == [
        ("2026-11-27", 2, 1, 0),
        ("2026-11-28", 4, 1, 2),
    ]
    only_a = build_report(reviewed, ReportFilters.parse(station="a")).to_dict()["review"]
    assert only_a["queue"]["FAIL"] == {"reviewed": 2, "pending": 1}
    assert [s["station"] for s in only_a["stations"]] == ["a"]


def test_review_figures_in_the_terminal_and_the_html(reviewed, tmp_path):
    data = build_report(reviewed, ReportFilters())
    con = Console(record=True, width=160)
    render_terminal(data, con)
    text = con.export_text()
    for title in (
        "Operator review",
        "Model and operator per station",
        "per class",
        "Overturned verdicts per day",
    ):
        assert title in text, title
    url = str(reviewed.url.render_as_string(hide_password=False))
    page = tmp_path / "r.html"
    res = CliRunner().invoke(
        report_cmd, ["--db", url, "--html", str(page), "--review-url", "http://127.0.0.1:8600/"]
    )
    assert res.exit_code == 0, res.output
    html = page.read_text()
    assert '<a id="review-link" href="http://127.0.0.1:8600/">' in html
    assert "Model and operator per class" in html
    plain = tmp_path / "plain.html"
    CliRunner().invoke(report_cmd, ["--db", url, "--html", str(plain)])
    assert "review-link" not in plain.read_text() and "Operator review" in plain.read_text()
    res = CliRunner().invoke(report_cmd, ["--db", url, "--review-url", "javascript:alert(1)"])
    assert res.exit_code != 0 and "--review-url" in str(res.exception)
