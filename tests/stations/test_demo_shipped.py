"""`inspect demo` on shipped recipes shows the whole product (issue 27, item 3): PASS, REVIEW
and FAIL verdicts, each with its overlay recorded. Two industrial recipes whose samples give all
three (tile: PASS and FAIL; tile-anomaly: a REVIEW sample), not all six: a few seconds."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from inspect_core.plugin_api.manager import get_registry
from inspect_stations.demo import run_demo

RECIPES = ("tile", "tile-anomaly")


def test_the_demo_gives_pass_review_and_fail_with_overlays(tmp_path, capsys):
    reg = get_registry()
    if "sql" not in reg.sinks or "industrial" not in reg.domains:
        pytest.skip("the records plugin or the industrial plugin is not installed")
    industrial = reg.domains["industrial"]
    recipes = [r for r in industrial.recipes if r.name in RECIPES]
    assert [r.name for r in recipes] == list(RECIPES), [r.name for r in industrial.recipes]
    expected = {s.expected for r in recipes for s in r.samples}
    assert {"PASS", "REVIEW", "FAIL"} <= expected, "the shipped samples lost a verdict"

    res = run_demo(tmp_path / "d", domains=[replace(industrial, recipes=recipes)])
    out = capsys.readouterr().out
    assert res.ok, res.stations
    got = {s["got"] for s in res.samples}
    assert {"PASS", "REVIEW", "FAIL"} <= got, res.samples
    con = sqlite3.connect(res.workdir / "demo.db")
    rows = con.execute("SELECT verdict, overlay_path FROM inspection").fetchall()
    con.close()
    assert len(rows) == sum(len(r.samples) for r in recipes)
    assert all(overlay and Path(overlay).is_file() for _, overlay in rows), rows
    summary = [line for line in out.splitlines() if line.startswith("demo: ")]
    assert len(summary) == 1 and all(f"{v} " in summary[0] for v in ("PASS", "REVIEW", "FAIL"))
