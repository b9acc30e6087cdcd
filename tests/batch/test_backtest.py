"""``inspect backtest`` on a LocalCluster: the active model reproduces the recorded verdicts
exactly, a changed model's flips are counted and shown, and a candidate that cannot stand in
for the recipe's model, or a scheduler that does not answer, is one clear line."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from backtest_kit import ROOT, STEEL, biased_steel, run
from backtest_kit import history as history  # the fixture, used by name

from inspect_batch.commands import CandidateRefused, check_candidate
from inspect_core.plugin_api.resolve import find_recipe
from inspect_db import Recorder

_run = run


def test_the_active_model_reproduces_every_recorded_verdict(history):
    url, verdicts, tmp = history
    s = _run(url, STEEL, tmp)
    assert s["images"] == len(verdicts) == 9 and s["errors"] == 0
    assert s["changed"] == 0 and s["agreement"] == 1.0
    for v in ("PASS", "REVIEW", "FAIL"):
        assert s["confusion"][v][v] == verdicts.count(v)
    assert {"PASS", "FAIL"} <= set(verdicts)  # both kinds are in the history
    lat = s["latency_ms"]  # the candidate's model step, per image
    assert lat["count"] == 9 and 0 < lat["median"] <= lat["p95"] <= lat["max"]
    # the records' latency of the same images, as the database holds it
    latency, inspect_ms = _recorded_ms(url)
    got = s["recorded_latency_ms"]
    assert got["count"] == len(latency) == 9
    assert got["median"] == pytest.approx(float(np.median(latency)), abs=0.01)
    assert got["p95"] == pytest.approx(float(np.percentile(latency, 95)), abs=0.01)
    # recorded through inspect_file: no split into inspection time and queue wait
    assert inspect_ms == [None] * 9 and s["recorded_inspect_ms"] is None
    # the operator overturned one PASS: neither the recorded nor the candidate verdict agrees
    r = s["reviewed"]
    assert (r["images"], r["recorded_agrees"], r["candidate_agrees"]) == (1, 0, 0)
    assert (r["recorded_share"], r["candidate_share"], r["candidate_disagrees"]) == (0.0, 0.0, 1)
    (d,) = r["disagreements"]
    assert (d["recorded"], d["candidate"], d["operator"]) == ("PASS", "PASS", "FAIL")
    assert d["station"] == "line1" and d["url"].endswith(".png")
    assert s["changed_images"] == [] and s["why_classes"] == {}


def _recorded_ms(url: str) -> tuple[list[float], list[float]]:
    """Every record's latency_ms and inspect_ms."""
    import sqlalchemy as sa

    from inspect_db.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as c:
            rows = c.execute(sa.text("SELECT latency_ms, inspect_ms FROM inspection")).all()
    finally:
        engine.dispose()
    return [r[0] for r in rows], [r[1] for r in rows]


def test_a_changed_model_flips_verdicts_and_the_page_shows_them(history, tmp_path):
    url, verdicts, _ = history
    # the same network with its prior pushed hard towards defects: passes become fails
    cand = biased_steel(tmp_path / "steel_biased.onnx", [-8.0, 0.0, 0.0, 0.0])
    page = tmp_path / "bt.html"
    s = _run(url, cand, tmp_path, html=page)
    passes = verdicts.count("PASS")
    assert s["confusion"]["PASS"]["FAIL"] == passes and s["changed"] >= passes > 0
    assert s["reviewed"]["candidate_agrees"] == 1  # the biased model fails the overturned one
    assert s["agreement"] == pytest.approx(1 - s["changed"] / 9)
    html = page.read_text()
    assert html.count('class="pair"') == s["changed"]
    assert html.count('class="why"') == s["changed"]  # each changed image says why
    assert "Latency (ms per image)" in html and f"<td>{s['latency_ms']['median']:.1f}</td>" in html
    # the operator's FAIL: the candidate now agrees, so no image is listed against it
    assert "the recorded verdict agrees on 0 (0.0%), the candidate's on 1 (100.0%)" in html
    assert "the candidate agrees with every operator decision" in html
    shots = sorted(p.name for p in (tmp_path / "bt_files").iterdir())
    assert sum(n.endswith("_candidate.png") for n in shots) == s["changed"]


def test_candidates_that_cannot_stand_in_are_refused(tmp_path):
    bare = tmp_path / "bare.onnx"
    shutil.copy(STEEL, bare)
    with pytest.raises(CandidateRefused, match="no model card bare.json"):
        check_candidate("industrial", "steel", bare)
    tile = ROOT / "plugins" / "inspect_plugins" / "industrial" / "models" / "tile.onnx"
    with pytest.raises(CandidateRefused, match="classes .*blowhole.* are not those of"):
        check_candidate("industrial", "steel", tile)
    with pytest.raises(CandidateRefused, match="no such model file"):
        check_candidate("industrial", "steel", tmp_path / "missing.onnx")


def main_exit(monkeypatch, capsys, *args):
    """Run ``inspect ARGS`` through the real entry point: (exit code, stdout, stderr)."""
    import sys

    from inspect_core import cli as cli_mod

    monkeypatch.setattr(sys, "argv", ["inspect", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        cli_mod.main()
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_an_unreachable_scheduler_is_one_line_and_exit_2(history, monkeypatch, capsys):
    url, _, _ = history
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr("inspect_batch.cluster.CONNECT_TIMEOUT_S", 1)
    code, out, err = main_exit(
        monkeypatch,
        capsys,
        "backtest",
        "--plugin",
        "industrial",
        "--recipe",
        "steel",
        "--candidate",
        str(STEEL),
        "--db",
        url,
        "--scheduler",
        f"tcp://127.0.0.1:{port}",
        "--json",
    )
    assert code == 2 and not out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "no Dask scheduler answers" in lines[0]


def test_a_scheduler_without_workers_is_one_line_too(monkeypatch):
    from distributed import LocalCluster

    from inspect_batch.cluster import SchedulerUnreachable, dask_client

    monkeypatch.setattr("inspect_batch.cluster.CONNECT_TIMEOUT_S", 0.3)
    with LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None) as c:
        with pytest.raises(SchedulerUnreachable, match="no worker joined it") as e:
            with dask_client(c.scheduler_address):
                pass
    assert f"dask worker {c.scheduler_address}" in str(e.value)


def _copy_history(history, tmp_path) -> tuple[str, Path]:
    """A copy of the history (database and archive) a test may change; (url, archive)."""
    url, _, tmp = history
    shutil.copytree(tmp / "archive", tmp_path / "archive")
    shutil.copy(tmp / "line.db", tmp_path / "line.db")
    return f"sqlite:///{tmp_path / 'line.db'}", tmp_path / "archive"


def test_a_file_that_is_not_the_recorded_image_is_an_error_and_exit_1(
    history, tmp_path, monkeypatch, capsys
):
    """A name reused by a later image (or a --path-map to another archive): not compared."""
    url, archive = _copy_history(history, tmp_path)
    _, _, tmp = history
    first, second = sorted(archive.glob("*.png"))[:2]
    shutil.copy(second, first)  # another image under the recorded name
    maps = [f"{tmp / 'archive'}={archive}"]
    s = _run(url, STEEL, tmp_path, path_maps=maps)
    assert (s["images"], s["errors"]) == (8, 1) and s["changed"] == 0
    assert "not the recorded image" in s["error_examples"][0]
    args = ["--plugin", "industrial", "--recipe", "steel", "--candidate", STEEL, "--db", url]
    code, out, err = main_exit(
        monkeypatch, capsys, "backtest", *args, "--path-map", maps[0], "--workers", 1, "--json"
    )
    assert code == 1 and json.loads(out)["errors"] == 1 and "above --max-errors 0" in err
    from click.testing import CliRunner

    from inspect_batch.commands import backtest

    more = ["--path-map", maps[0], "--workers", "1", "--json", "--max-errors", "1"]
    res = CliRunner().invoke(backtest, [*map(str, args), *more])
    assert res.exit_code == 0, res.output


def test_a_window_across_a_promotion_counts_changes_per_recorded_model(history, tmp_path):
    import sqlalchemy as sa

    from inspect_db.engine import make_engine

    url, archive = _copy_history(history, tmp_path)
    with Recorder(url) as rec:  # the last three records were judged by an earlier version
        old = rec.register_model("e" * 64, plugin="industrial", recipe="steel", version="v1")
    engine = make_engine(url)
    with engine.begin() as c:
        last3 = "SELECT id FROM inspection ORDER BY id DESC LIMIT 3"
        c.execute(sa.text(f"UPDATE inspection SET model_id = :m WHERE id IN ({last3})"), {"m": old})
    engine.dispose()
    _, _, tmp = history
    s = _run(url, STEEL, tmp_path, path_maps=[f"{tmp / 'archive'}={archive}"])
    by = s["recorded_by"]
    assert by["v1"] == {"images": 3, "changed": 0} and sum(v["images"] for v in by.values()) == 9


def test_an_empty_window_is_an_error_naming_where_it_looked(history, tmp_path):
    from inspect_core.errors import InspectError

    url, _, _ = history
    with pytest.raises(InspectError, match=r"no judged record .* industrial:steel in sqlite"):
        _run(url, STEEL, tmp_path, window=(None, "2000-01-01", None))


def test_path_maps_match_whole_folders():
    from inspect_batch.history import PathMap, where_read

    maps = [PathMap.parse("/srv/archive=/mnt/a/")]
    assert where_read("/srv/archive/PASS/x.png", maps) == "/mnt/a/PASS/x.png"
    assert where_read("/srv/archive2/x.png", maps) == "/srv/archive2/x.png"


def test_a_chunk_whose_task_fails_is_counted_and_the_others_go_on():
    from distributed import Client

    from inspect_batch.stream import stream

    def judge(chunk):
        if 3 in chunk:
            raise RuntimeError("worker killed")
        return [x * 10 for x in chunk]

    with Client(processes=False, n_workers=1, dashboard_address=None) as client:
        got = list(stream(client, judge, range(6), 2, 2, lambda c, e: [f"lost {c}: {e}"]))
        with pytest.raises(RuntimeError, match="worker killed"):
            list(stream(client, judge, range(6), 2, 2))
    flat = sorted(map(str, (r for results in got for r in results)))
    assert flat == sorted(["0", "10", "40", "50", "lost [2, 3]: worker killed"])


def test_every_setting_a_station_may_override_is_recorded_and_given_back():
    """A station's tile, overlap or coverage classes not recorded would have the backtest
    judge its images under the recipe's, and the active model no longer reproduce them."""
    from inspect_batch.items import RecipeSettings
    from inspect_core.runtime.recipe import RECORDED_SETTINGS as RECORDED
    from inspect_stations.config.tables import OVERRIDE_KEYS

    assert set(OVERRIDE_KEYS) - {"rule_params", "add_rules"} <= set(RECORDED)  # both end in rules
    steel = find_recipe("industrial", "steel")
    tuned = steel.with_overrides({"tile": 96, "tile_overlap": 0.5, "coverage_classes": ["patches"]})
    s = RecipeSettings.from_thresholds(tuned.thresholds())
    again = steel.with_overrides(s.overrides)
    assert (again.tile, again.tile_overlap, again.coverage_classes) == (96, 0.5, ["patches"])
    assert again.thresholds() == tuned.thresholds()


def test_overlays_stop_once_the_page_has_its_changed_images():
    """Workers render a PNG per changed image only while the page still wants some."""
    from inspect_batch.compare import Tally
    from inspect_batch.items import BacktestItem, Chunk, ItemResult
    from inspect_batch.run import _remember

    tally = Tally(max_examples=1)
    item = BacktestItem(1, "a.png", "PASS", "k")
    chunks = _remember(iter([Chunk([item], {}), Chunk([item], {})]), {}, tally)
    assert next(chunks).overlays is True
    tally.add(item, ItemResult(1, "FAIL", 1.0))  # the one changed image the page shows
    assert next(chunks).overlays is False
