"""The station's Docker image: torch-free runtime, and a build context that never carries a
station's images, journal or database (no Docker daemon needed for these checks)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rules, as far as this file uses them: a pattern matches a path or
    any folder above it; ``**`` any number of folders, ``*`` within one name."""

    def rx(p: str) -> re.Pattern:
        out = ""
        i = 0
        while i < len(p):
            if p.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif p.startswith("**", i):
                out, i = out + ".*", i + 2
            elif p[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif p[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(p[i]), i + 1
        return re.compile(out)

    parts = path.split("/")
    prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
    result = False
    for p in patterns:
        neg = p.startswith("!")
        r = rx(p[1:] if neg else p)
        if any(r.fullmatch(x) for x in prefixes):
            result = not neg
    return result


def _patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def test_the_build_context_leaves_station_data_out_and_keeps_the_code():
    pats = _patterns()
    for p in (
        "stations/inbox/part1.png",
        "stations/archive/PASS/2024-05-02/part1.png",
        "stations/quarantine/2024-05-02/bad.png",
        "stations/state/journal.sqlite",
        "stations/state/records.db",
        "stations/inspect_stations/inbox/part1.png",
        "stations/inspect_stations/state/journal.sqlite",
        "line1/.station-steel/journal.sqlite",
        "demo.db",
        "work/demo/demo.db-wal",
        "runs/steel/model.onnx",
        ".venv/bin/python",
    ):
        assert _ignored(p, pats), f"{p} would be sent to the Docker build"
    for p in (
        "stations/inspect_stations/pipeline/archive.py",
        "stations/inspect_stations/pipeline/daemon.py",
        "stations/inspect_stations/example.toml",
        "plugins/inspect_plugins/industrial/models/steel.onnx",
        "plugins/inspect_plugins/industrial/models/steel.json",
        "db/inspect_db/alembic.ini",
        "db/inspect_db/migrations/versions/0001_initial.py",
        "inspect_core/cli.py",
        "pyproject.toml",
        "db/pyproject.toml",
        "stations/pyproject.toml",
        "plugins/pyproject.toml",
        "requirements/station.txt",
        "README.md",
    ):
        assert not _ignored(p, pats), f"{p} is needed by the Docker build"


def test_the_image_installs_no_torch():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in deps["dependencies"] if d.lower().startswith("torch")]
    docker = (ROOT / "Dockerfile").read_text()
    # the image installs the station lock, hashed, and the project without resolving anything
    assert "pip install --require-hashes --no-deps -r /wheels/station.txt" in docker
    assert re.findall(r"pip install (?!--require-hashes)[^\n]*", docker) == [
        "pip install --no-deps /wheels/inspect_*.whl \\"
    ]
    lock = (ROOT / "requirements/station.txt").read_text()
    pins = re.findall(r"^([A-Za-z0-9._-]+)==", lock, re.M)
    assert {"onnxruntime", "psycopg", "paho-mqtt"} <= set(pins)
    assert not [p for p in pins if p.startswith(("torch", "nvidia"))]
    # what the image installs: the core, the plugins, the records and the station (and their
    # postgres and mqtt extras), none asking for torch
    for folder in (".", "plugins", "db", "stations"):
        project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]
        wanted = [*project["dependencies"]]
        for extra in ("postgres", "mqtt"):
            wanted += project.get("optional-dependencies", {}).get(extra, [])
        assert not [d for d in wanted if "torch" in d], folder


def test_a_station_runs_and_records_without_torch(tmp_path, tiny_model):
    """What the image runs, with torch made unimportable: a station over a folder into SQLite,
    then `inspect station status`."""
    from inspect_stations.testing import recipe_file, write_config, write_images

    pytest.importorskip("inspect_db")
    write_images(tmp_path / "inbox", 3, seed=5)
    recipe_file(tmp_path, tiny_model)
    cfg = write_config(
        tmp_path / "station.toml",
        {
            "station": {"name": "bare", "recipe_file": "tiny.toml"},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
            "database": {"url": "sqlite:///records.db"},
        },
    )
    code = (
        "import sys; sys.modules['torch'] = None; sys.argv = ['inspect'] + sys.argv[1:]; "
        "from inspect_core.cli import main; main()"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, "station", "run", str(cfg), "--until-empty", "--log-json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "ModuleNotFoundError" not in run.stderr and "import of torch" not in run.stderr
    import sqlite3

    con = sqlite3.connect(tmp_path / "records.db")
    assert con.execute("SELECT count(*) FROM inspection").fetchone()[0] == 3
    con.close()
    st = subprocess.run(
        [sys.executable, "-c", code, "station", "status", "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert st.returncode == 1 and "bare" in st.stdout  # stopped: not running -> 1
