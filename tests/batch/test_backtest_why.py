"""Why a backtest's verdict changed: the classes whose regions differ between the record's
``region`` rows and the candidate's regions (counts and areas per class) and the rules fired on
each side, in the JSON, the page (escaped) and the terminal; and the figures the tally adds:
the records' latency beside the candidate's, the images where the candidate disagrees with an
operator."""

from __future__ import annotations

import pytest
from backtest_kit import biased_steel, run
from backtest_kit import history as history  # the fixture, used by name

from inspect_batch.compare import Tally
from inspect_batch.items import BacktestItem, Fired, ItemResult, RegionBox
from inspect_batch.why import ClassChange, RecordedSide, explain

SCRATCH = RegionBox("scratch", 300, (1, 2, 10, 30))


def test_a_class_change_reads_as_counts_and_areas():
    assert ClassChange("scratch", 2, 410, 0, 0).text() == "scratch: 2 regions 410 px -> 0"
    assert ClassChange("patches", 0, 0, 1, 1200).text() == "patches: new, 1 region 1200 px"
    assert ClassChange("pits", 1, 50, 3, 90).text() == "pits: 1 region 50 px -> 3 regions 90 px"
    assert (
        ClassChange("pits", 1, 50, 1, 50).text() == "pits: 1 region 50 px -> 1 region 50 px (moved)"
    )


def test_explain_lists_only_the_classes_whose_regions_differ():
    moved = RegionBox("pits", 40, (100, 100, 5, 8))
    recorded = RecordedSide(
        (SCRATCH, RegionBox("scratch", 110, (50, 2, 9, 9)), RegionBox("pits", 40, (0, 0, 5, 8))),
        (Fired("max_area", "FAIL"),),
    )
    same = RegionBox("inclusion", 70, (7, 7, 7, 7))
    recorded = RecordedSide((*recorded.regions, same), recorded.fired)
    result = ItemResult(1, "PASS", 1.0, (moved, same, RegionBox("patches", 1200, (0, 0, 40, 30))))
    why = explain(recorded, result)
    assert [c.text() for c in why.classes] == [
        "patches: new, 1 region 1200 px",
        "pits: 1 region 40 px -> 1 region 40 px (moved)",
        "scratch: 2 regions 410 px -> 0",
    ]  # inclusion: the same region on both sides
    assert why.recorded_fired == (Fired("max_area", "FAIL"),) and why.candidate_fired == ()
    assert why.to_dict()["recorded_fired"] == [{"rule": "max_area", "decision": "FAIL"}]


def _item(i: int, recorded: str, latency: float | None = None) -> BacktestItem:
    return BacktestItem(i, f"/a/{i}.png", recorded, "k", "line1", latency_ms=latency)


def test_the_tally_compares_latency_and_lists_operator_disagreements():
    tally = Tally(max_examples=1)
    for i, (rec, cand, human) in enumerate(
        [("PASS", "PASS", "PASS"), ("PASS", "FAIL", "PASS"), ("FAIL", "PASS", "FAIL")]
    ):
        tally.add(_item(i, rec, 100.0 * (i + 1)), ItemResult(i, cand, 10.0 * (i + 1)), human)
    tally.add(_item(9, "PASS"), ItemResult(9, "PASS", 40.0))  # an old record: no latency
    split = BacktestItem(10, "/a/10.png", "PASS", "k", latency_ms=7.0, inspect_ms=5.0)
    tally.add(split, ItemResult(10, "PASS", 4.0))
    r = tally.summary()
    assert r["latency_ms"]["count"] == 5 and r["latency_ms"]["max"] == 40.0
    assert r["recorded_latency_ms"] == {
        "count": 4,
        "median": 150.0,
        "p95": 285.0,
        "max": 300.0,
        "mean": 151.75,
    }
    assert r["recorded_inspect_ms"]["count"] == 1 and r["recorded_inspect_ms"]["median"] == 5.0
    o = r["reviewed"]
    assert (o["images"], o["recorded_agrees"], o["candidate_agrees"]) == (3, 3, 1)
    assert (o["recorded_share"], o["candidate_share"], o["candidate_disagrees"]) == (1.0, 0.3333, 2)
    assert [d["inspection_id"] for d in o["disagreements"]] == [1]  # the first max_examples
    # a changed image kept without its record found says so rather than inventing a why
    assert r["changed_images"][0]["why"] is None and r["changed"] == 2


def test_the_page_escapes_what_the_records_and_models_name(tmp_path):
    from inspect_batch.page import write_page

    tally = Tally()
    item = BacktestItem(5, "/a/<img src=x>.png", "FAIL", "k", "<b>st</b>")
    result = ItemResult(5, "PASS", 3.0, (), fired=(Fired("<script>r", "PASS"),))
    side = RecordedSide((RegionBox("<i>cls", 12, (0, 0, 3, 4)),), (Fired("rule&", "FAIL"),))
    tally.add(item, result, "FAIL", side)
    meta = {"plugin": "p", "recipe": "r", "candidate": "c", "sha256": "", "window": "w"}
    html = write_page(tmp_path / "bt.html", tally.result(), meta).read_text()
    assert "&lt;i&gt;cls: 12 px" not in html  # counts and areas, in words
    assert "&lt;i&gt;cls: 1 region 12 px -&gt; 0" in html
    assert "rule&amp; (FAIL)" in html and "&lt;script&gt;r (PASS)" in html
    assert "&lt;b&gt;st&lt;/b&gt;" in html and "/a/&lt;img src=x&gt;.png" in html
    for raw in ("<script>", "<img src=x>", "<i>cls", "<b>st"):
        assert raw not in html


@pytest.fixture(scope="module")
def cleaned(history, tmp_path_factory):
    """The backtest of a candidate that sees no defect (its prior pushed to background): every
    FAIL becomes a PASS; (summary, page, history)."""
    url, verdicts, _ = history
    tmp = tmp_path_factory.mktemp("cleaned")
    cand = biased_steel(tmp / "steel_clean.onnx", [30.0, 0.0, 0.0, 0.0])
    page = tmp / "bt.html"
    return run(url, cand, tmp, html=page), page, history


def _region_rows(url: str) -> dict[int, dict[str, tuple[int, int]]]:
    """Per inspection: class -> (regions, area) from its ``region`` rows."""
    import sqlalchemy as sa

    from inspect_db.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as c:
            q = "SELECT inspection_id, class_name, count(*), sum(area_px) FROM region GROUP BY 1, 2"
            rows = c.execute(sa.text(q)).all()
    finally:
        engine.dispose()
    out: dict[int, dict[str, tuple[int, int]]] = {}
    for iid, cls, n, area in rows:
        out.setdefault(iid, {})[cls] = (n, area)
    return out


def test_a_removed_defect_names_its_recorded_regions_and_rules(cleaned):
    s, page, (url, verdicts, _) = cleaned
    fails = verdicts.count("FAIL")
    assert s["confusion"]["FAIL"]["PASS"] == fails > 0
    rows = _region_rows(url)
    assert len(s["changed_images"]) == s["changed"]
    for c in s["changed_images"]:
        if c["recorded"] != "FAIL":
            continue
        why = c["why"]
        recorded = {
            k["class"]: (k["recorded"]["regions"], k["recorded"]["area_px"]) for k in why["classes"]
        }
        assert recorded == rows[c["inspection_id"]]  # every recorded class, gone
        assert all(k["candidate"] == {"regions": 0, "area_px": 0} for k in why["classes"])
        assert all(k["text"].endswith(" -> 0") for k in why["classes"])
        assert {f["decision"] for f in why["recorded_fired"]} >= {"FAIL"}
        assert all(f["decision"] != "FAIL" for f in why["candidate_fired"])
    assert sum(s["why_classes"].values()) >= fails
    html = page.read_text()
    some = next(c for c in s["changed_images"] if c["recorded"] == "FAIL")
    assert some["why"]["classes"][0]["text"].replace(">", "&gt;") in html
    assert f"rules fired: recorded {some['why']['recorded_fired'][0]['rule']}" in html


def test_a_new_defect_is_named_with_the_candidates_regions(history, tmp_path):
    url, verdicts, _ = history
    cand = biased_steel(tmp_path / "steel_biased.onnx", [-8.0, 0.0, 0.0, 0.0])
    s = run(url, cand, tmp_path)
    rows = _region_rows(url)
    passed = [c for c in s["changed_images"] if c["recorded"] == "PASS"]
    assert len(passed) == verdicts.count("PASS") > 0
    for c in passed:
        assert c["inspection_id"] not in rows  # a recorded PASS of steel had no region
        classes = c["why"]["classes"]
        assert classes and all(k["text"].split(": ")[1].startswith("new, ") for k in classes)
        assert all(k["candidate"]["regions"] > 0 < k["candidate"]["area_px"] for k in classes)
        assert c["why"]["recorded_fired"] == [] and c["why"]["candidate_fired"]


def test_the_terminal_names_latency_operators_and_classes(cleaned, capsys):
    from inspect_batch.commands import _print

    s, _, _ = cleaned
    _print(s)
    out = capsys.readouterr().out
    lat, rec = s["latency_ms"], s["recorded_latency_ms"]
    assert f"candidate model step: median {lat['median']} ms, p95 {lat['p95']} ms" in out
    assert f"max {lat['max']} ms; recorded latency: median {rec['median']} ms" in out
    assert "operators decided 1: recorded verdict agrees on 0 (0.0%)" in out
    first = next(iter(s["why_classes"]))
    assert f"classes whose regions differ in the changed images: {first} " in out
