"""`inspect demo`: one station per recipe over its sample images, drained into SQLite, then the
report (tested with tiny injected recipes; the shipped ones need the trained models)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspect_core.runtime.recipe import Domain, Recipe, SampleImage
from inspect_stations.demo import run_demo

INSPECT = str(Path(sys.executable).with_name("inspect"))


def _domain(tmp: Path, model: Path, name: str, n: int) -> Domain:
    folder = tmp / f"samples_{name}"
    folder.mkdir()
    rng = np.random.default_rng(len(name))
    samples = []
    for i in range(n):
        p = folder / f"{name}_{i}.png"
        cv2.imwrite(str(p), rng.integers(0, 256, (40, 52), dtype=np.uint8))
        samples.append(SampleImage(p, "PASS"))
    bad = folder / f"{name}_broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    samples.append(SampleImage(bad, "FAIL"))
    return Domain(
        name,
        [Recipe(name="blob", model=model, rules=[{"type": "min_area", "min": 1}], samples=samples)],
    )


def test_demo_runs_a_station_per_recipe_and_reports(tmp_path, tiny_model, capsys):
    from inspect_core.plugin_api.manager import get_registry

    if "sql" not in get_registry().sinks:
        pytest.skip("the records plugin (sql sink) is not installed")
    domains = [_domain(tmp_path, tiny_model, "alpha", 3), _domain(tmp_path, tiny_model, "beta", 2)]
    res = run_demo(tmp_path / "demo", domains=domains)
    out = capsys.readouterr().out
    assert res.ok
    assert [s["name"] for s in res.stations] == ["demo-alpha-blob", "demo-beta-blob"]
    assert [s["images"] for s in res.stations] == [4, 3]
    con = sqlite3.connect(tmp_path / "demo" / "demo.db")
    rows = con.execute(
        "SELECT s.name, i.verdict FROM inspection i JOIN station s ON s.id = i.station_id"
    ).fetchall()
    con.close()
    assert len(rows) == 7 and sum(v == "ERROR" for _, v in rows) == 2
    # every sample has been compared with what its recipe expects
    broken = [m for m in res.samples if m["image"].endswith("_broken.png")]
    assert [m["got"] for m in broken] == ["ERROR", "ERROR"]
    assert res.report_html == tmp_path / "demo" / "report.html" and res.report_html.is_file()
    assert "demo-alpha-blob" in res.report_html.read_text()
    assert "demo-alpha-blob" in out and "expected FAIL, got ERROR" in out
    # the stations' folders are left for a look
    assert (tmp_path / "demo" / "stations" / "demo-beta-blob" / "archive").is_dir()


def test_demo_without_recipes_says_why(tmp_path):
    res = subprocess.run(
        [INSPECT, "demo", "--dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "INSPECT_PLUGINS": "station,records"},
    )
    assert res.returncode == 2
    assert "no installed recipe has sample images" in res.stderr
