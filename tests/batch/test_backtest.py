"""``inspect backtest`` on a LocalCluster: the active model reproduces the recorded verdicts
exactly, a changed model's flips are counted and shown, and a candidate that cannot stand in
for the recipe's model, or a scheduler that does not answer, is one clear line."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import cv2
import pytest

from inspect_batch.commands import CandidateRefused, check_candidate
from inspect_batch.run import run_backtest
from inspect_core.plugin_api.resolve import find_recipe
from inspect_core.runtime.inspector import Inspector
from inspect_core.runtime.onnx_model import edit_meta
from inspect_core.training.model_card import save_card
from inspect_db import Recorder

ROOT = Path(__file__).resolve().parents[2]
STEEL = ROOT / "plugins" / "industrial" / "models" / "steel.onnx"


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """An archive of 9 steel images (the samples, mirrored and turned) recorded by the steel
    recipe as station line1, one of its PASS overturned by an operator, and the database URL."""
    tmp = tmp_path_factory.mktemp("history")
    archive = tmp / "archive"
    archive.mkdir()
    for src in sorted((ROOT / "plugins/industrial/samples").glob("steel_*.png")):
        img = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
        for k, variant in enumerate((img, img[:, ::-1], img[::-1])):
            cv2.imwrite(str(archive / f"{src.stem}_{k}.png"), variant)
    url = f"sqlite:///{tmp / 'line.db'}"
    inspector = Inspector(find_recipe("industrial", "steel"))
    verdicts = []
    with Recorder(url) as rec:
        for p in sorted(archive.glob("*.png")):
            insp, _ = inspector.inspect_file(p, station="line1", plugin="industrial")
            rec.record(insp)
            verdicts.append(insp.verdict.decision.value)
    _overturn_first_pass(url)  # every test sees the operator's one decision
    return url, verdicts, tmp


def _run(url, candidate, tmp, **kw):
    args = dict(
        plugin="industrial",
        recipe="steel",
        candidate=candidate,
        sha256="",
        window=(None, None, None),
        url=url,
        scheduler=None,
        workers=1,
        chunk=2,
        path_maps=[],
        html=None,
        quiet=True,
    )
    args.update(kw)
    return run_backtest(**args)


def _overturn_first_pass(url: str) -> int:
    """An operator reviews the first PASS and decides FAIL; its inspection id."""
    import sqlalchemy as sa

    from inspect_db.engine import make_engine
    from inspect_db.review_store import add_user, record_decision
    from inspect_db.review_types import DecisionIn

    engine = make_engine(url)
    try:
        with engine.connect() as c:
            iid = c.execute(sa.text("SELECT min(id) FROM inspection WHERE verdict = 'PASS'"))
            iid = int(iid.scalar_one())
        user = add_user(engine, "olga", "operator", "not-a-real-hash")
        record_decision(engine, DecisionIn(iid, user.id, "FAIL", ()))
    finally:
        engine.dispose()
    return iid


def test_the_active_model_reproduces_every_recorded_verdict(history):
    url, verdicts, tmp = history
    s = _run(url, STEEL, tmp)
    assert s["images"] == len(verdicts) == 9 and s["errors"] == 0
    assert s["changed"] == 0 and s["agreement"] == 1.0
    for v in ("PASS", "REVIEW", "FAIL"):
        assert s["confusion"][v][v] == verdicts.count(v)
    assert {"PASS", "FAIL"} <= set(verdicts)  # both kinds are in the history
    assert s["latency_ms"]["median"] > 0
    # the operator overturned one PASS: neither the recorded nor the candidate verdict agrees
    assert s["reviewed"] == {"images": 1, "recorded_agrees": 0, "candidate_agrees": 0}


def test_a_changed_model_flips_verdicts_and_the_page_shows_them(history, tmp_path):
    url, verdicts, _ = history
    # the same network with its prior pushed hard towards defects: passes become fails
    cand = tmp_path / "steel_biased.onnx"
    shutil.copy(STEEL, cand)
    edit_meta(cand, lambda m: m.update(class_bias=[-8.0, 0.0, 0.0, 0.0]))
    card = json.loads(STEEL.with_suffix(".json").read_text())
    save_card(card, cand.with_suffix(".json"), cand)
    page = tmp_path / "bt.html"
    s = _run(url, cand, tmp_path, html=page)
    passes = verdicts.count("PASS")
    assert s["confusion"]["PASS"]["FAIL"] == passes and s["changed"] >= passes > 0
    assert s["reviewed"]["candidate_agrees"] == 1  # the biased model fails the overturned one
    assert s["agreement"] == pytest.approx(1 - s["changed"] / 9)
    html = page.read_text()
    assert html.count('class="pair"') == s["changed"]
    shots = sorted(p.name for p in (tmp_path / "bt_files").iterdir())
    assert sum(n.endswith("_candidate.png") for n in shots) == s["changed"]


def test_candidates_that_cannot_stand_in_are_refused(tmp_path):
    bare = tmp_path / "bare.onnx"
    shutil.copy(STEEL, bare)
    with pytest.raises(CandidateRefused, match="no model card bare.json"):
        check_candidate("industrial", "steel", bare)
    tile = ROOT / "plugins" / "industrial" / "models" / "tile.onnx"
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
