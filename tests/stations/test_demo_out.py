"""`inspect demo` (issue 27, item 3): it writes into ./demo-out (git-ignored), made afresh each
run, keeps an overlay per image, and ends with the folder and the commands to run next (the
review page with a demo operator, the HTML report, `inspect` on PATH). Tiny injected recipes;
test_demo_shipped.py runs the shipped ones."""

from __future__ import annotations

import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspect_core.errors import InspectError
from inspect_core.runtime.recipe import Domain, Recipe, SampleImage
from inspect_stations.demo import run_demo
from inspect_stations.demo_next import activate_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _sql_sink():
    from inspect_core.plugin_api.manager import get_registry

    if "sql" not in get_registry().sinks:
        pytest.skip("the records plugin (sql sink) is not installed")


def _domains(tmp: Path, model: Path, n: int = 2) -> list[Domain]:
    folder = tmp / "samples"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(7)
    samples = []
    for i in range(n):
        p = folder / f"blob_{i}.png"
        cv2.imwrite(str(p), rng.integers(0, 256, (40, 52), dtype=np.uint8))
        samples.append(SampleImage(p, "PASS"))
    rules = [{"type": "min_area", "min": 1}]
    return [Domain("alpha", [Recipe(name="blob", model=model, rules=rules, samples=samples)])]


def _rows(db: Path) -> list[tuple[str, str | None]]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT verdict, overlay_path FROM inspection").fetchall()
    finally:
        con.close()


def test_the_demo_writes_into_demo_out_and_ends_with_what_to_run_next(
    tmp_path, tiny_model, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    res = run_demo(domains=_domains(tmp_path, tiny_model))
    out = capsys.readouterr().out
    assert res.ok and res.workdir.resolve() == (tmp_path / "demo-out").resolve()
    assert (tmp_path / "demo-out" / "demo.db").is_file()
    tail = out[out.rindex("\ndemo: ") :]
    assert "2 sample images through 1 stations" in tail and "2 overlays kept" in tail
    assert "everything is in demo-out/" in tail
    db = "sqlite:///demo-out/demo.db"
    lines = [line.strip() for line in tail.splitlines()]
    assert f"inspect report --db {db} --html demo-out/report.html" in lines
    # the records plugin gives `report`; the review page, where its plugin is installed
    from inspect_core.cli import cli

    cli.load_plugin_commands()
    if "review" in cli.commands:
        assert f"inspect review user add demo --role operator --db {db}" in lines
        assert f"inspect review serve --db {db} --media-root demo-out/stations" in lines
    else:
        assert any("make dev" in line for line in lines)


def test_every_image_has_its_overlay_recorded(tmp_path, tiny_model):
    res = run_demo(tmp_path / "d", domains=_domains(tmp_path, tiny_model, 3))
    rows = _rows(res.workdir / "demo.db")
    assert len(rows) == 3
    for _verdict, overlay in rows:
        assert overlay and Path(overlay).is_file(), rows
        assert "archive/overlays" in Path(overlay).as_posix()


def test_a_second_run_starts_afresh(tmp_path, tiny_model, capsys):
    domains = _domains(tmp_path, tiny_model)
    run_demo(tmp_path / "d", domains=domains)
    (tmp_path / "d" / "left-over.txt").write_text("from the first run")
    res = run_demo(tmp_path / "d", domains=domains)
    assert [s["images"] for s in res.stations] == [2]
    assert [s["got"] for s in res.samples] != ["missing", "missing"]
    assert len(_rows(res.workdir / "demo.db")) == 2  # not 4: the first run's records are gone
    assert not (tmp_path / "d" / "left-over.txt").exists()


def test_a_folder_the_demo_did_not_make_is_left_alone(tmp_path, tiny_model):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious")
    with pytest.raises(InspectError, match="not empty, and no earlier `inspect demo` made it"):
        run_demo(folder, domains=_domains(tmp_path, tiny_model))
    assert (folder / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.tex"]


def test_the_path_line_names_this_environments_activate(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv dir"))
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    (tmp_path / "venv dir" / "bin").mkdir(parents=True)
    assert activate_command() is None  # no activate script there
    (tmp_path / "venv dir" / "bin" / "activate").write_text("")
    monkeypatch.chdir(tmp_path)
    assert activate_command() == ". " + shlex.quote("venv dir/bin/activate")
    monkeypatch.setattr(sys, "base_prefix", sys.prefix)  # not in a virtual environment
    assert activate_command() is None


def test_demo_out_is_git_ignored():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    res = subprocess.run(
        ["git", "check-ignore", "-q", "demo-out/demo.db"], cwd=ROOT, capture_output=True
    )
    assert res.returncode == 0, "demo-out/ is not in .gitignore"
