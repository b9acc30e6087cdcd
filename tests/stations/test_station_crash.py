"""Exactly-once under kill -9, and graceful shutdown on SIGTERM, with a real station process
(`inspect station run CONFIG.toml`), a tiny model and the SQLite ``sql`` sink."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inspect_stations.testing import recipe_file, wait_for, write_config, write_images

INSPECT = str(Path(sys.executable).with_name("inspect"))


def _needs_sql_sink():
    from inspect_core.plugin_api.manager import get_registry

    if "sql" not in get_registry().sinks:
        pytest.skip("the records plugin (sql sink) is not installed")


def _setup(tmp_path: Path, model: Path, n: int, **station) -> tuple[Path, dict]:
    inbox = tmp_path / "inbox"
    paths = write_images(inbox, n, seed=n)
    shas = {hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    assert len(shas) == n
    recipe_file(tmp_path, model)
    cfg = write_config(
        tmp_path / "station.toml",
        {
            "station": {"name": "crash", "recipe_file": "tiny.toml", "batch": 4, **station},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
            "database": {"url": "sqlite:///records.db"},
        },
    )
    return cfg, {
        "inbox": inbox,
        "archive": tmp_path / "archive",
        "db": tmp_path / "records.db",
        "shas": shas,
        "state": tmp_path / "state",
    }


def _archived(archive: Path) -> list[Path]:
    if not archive.exists():
        return []
    return [p for p in archive.rglob("*") if p.is_file() and not p.name.startswith(".")]


def _inbox(inbox: Path) -> list[Path]:
    return [p for p in inbox.iterdir() if not p.name.startswith(".")]


def _records(db: Path) -> list[tuple[str, str]]:
    if not db.exists():
        return []
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT image_sha256, verdict FROM inspection").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def test_kill9_at_random_points_loses_nothing_and_records_nothing_twice(tmp_path, tiny_model):
    """Images keep arriving while the station is killed again and again: during start-up and
    recovery, while inspecting, journaling, writing the database and moving files."""
    _needs_sql_sink()
    n, first, wave = 500, 200, 30
    cfg, w = _setup(tmp_path, tiny_model, first)
    rng = random.Random(1234)
    added, kills = first, 0
    while (_inbox(w["inbox"]) or added < n) and kills < 20:
        before = len(_archived(w["archive"]))
        proc = subprocess.Popen(
            [INSPECT, "station", "run", str(cfg)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            recorded = len(_records(w["db"]))
            if kills % 3 == 1:  # while the database is being written
                wait_for(
                    lambda n=recorded, p=proc: len(_records(w["db"])) > n or p.poll() is not None,
                    timeout=60,
                    what="new records",
                )
                time.sleep(rng.uniform(0.0, 0.1))
            elif kills % 3 == 2:  # anywhere: start-up and recovery included
                time.sleep(rng.uniform(0.0, 1.2))
            else:  # while images are inspected, journaled and moved
                wait_for(
                    lambda n=before, p=proc: (
                        len(_archived(w["archive"])) > n or p.poll() is not None
                    ),
                    timeout=60,
                    what="the station to archive an image",
                )
                time.sleep(rng.uniform(0.0, 0.15))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        kills += 1
        if added < n:
            k = min(wave, n - added)
            paths = write_images(w["inbox"], k, seed=10_000 + added, start=added)
            w["shas"] |= {hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
            added += k
    assert kills >= 8 and len(w["shas"]) == n
    # a last run drains whatever is left
    done = subprocess.run(
        [INSPECT, "station", "run", str(cfg), "--until-empty"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]

    archived = _archived(w["archive"])
    records = _records(w["db"])
    assert _inbox(w["inbox"]) == []
    assert len(archived) == n, f"{len(archived)} archived of {n} after {kills} kills"
    assert len(records) == n, (
        f"{len(records)} records of {n} after {kills} kills; last run:\n" + done.stderr[-3000:]
    )
    assert {sha for sha, _ in records} == w["shas"]
    assert {hashlib.sha256(p.read_bytes()).hexdigest() for p in archived} == w["shas"]
    con = sqlite3.connect(w["state"] / "journal.sqlite")
    assert con.execute("SELECT count(*) FROM journal").fetchone()[0] == 0
    con.close()


def test_sigterm_finishes_current_images_flushes_and_exits_0(tmp_path, tiny_model):
    _needs_sql_sink()
    n = 1000
    cfg, w = _setup(tmp_path, tiny_model, n)
    proc = subprocess.Popen(
        [INSPECT, "station", "run", str(cfg), "--log-json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: len(_archived(w["archive"])) >= 5,
            timeout=60,
            what="the station to start archiving",
        )
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    archived = _archived(w["archive"])
    records = _records(w["db"])
    left = _inbox(w["inbox"])
    assert len(records) == len(archived)  # everything taken was recorded and filed
    assert len(archived) + len(left) == n
    assert left, "SIGTERM came too late to test anything; raise n"
    assert {sha for sha, _ in records} == {
        hashlib.sha256(p.read_bytes()).hexdigest() for p in archived
    }
    events = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert all({"ts", "level", "station", "event", "msg"} <= set(e) for e in events)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and "signal" in kinds and kinds[-1] == "stop"
    status = json.loads((w["state"] / "status.json").read_text())
    assert status["state"] == "stopped" and status["journal_pending"] == 0
    assert status["images_total"] == len(archived)
    # `inspect station status` reads it: not running any more -> exit 1
    st = subprocess.run(
        [INSPECT, "station", "status", str(cfg), "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert st.returncode == 1
    assert json.loads(st.stdout)["images_total"] == len(archived)


def test_second_station_on_the_same_state_dir_is_refused(tmp_path, tiny_model):
    _needs_sql_sink()
    cfg, w = _setup(tmp_path, tiny_model, 3)
    proc = subprocess.Popen(
        [INSPECT, "station", "run", str(cfg)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: (w["state"] / "status.json").exists(), timeout=60, what="status.json")
        other = subprocess.run(
            [INSPECT, "station", "run", str(cfg)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.returncode == 2
        assert "already running" in other.stderr and str(w["state"]) in other.stderr
        st = subprocess.run(
            [INSPECT, "station", "status", str(cfg)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert st.returncode == 0, st.stdout + st.stderr
        assert "running" in st.stdout and "crash" in st.stdout
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C stops it as cleanly as SIGTERM
        assert proc.wait(timeout=60) == 0
    assert os.path.exists(w["state"] / "journal.sqlite")
    assert json.loads((w["state"] / "status.json").read_text())["state"] == "stopped"
