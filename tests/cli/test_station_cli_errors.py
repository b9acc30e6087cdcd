"""Mistakes and damage around the station commands give one line saying what to do, never a
traceback: a damaged status.json, bytes that are not UTF-8 in an argument or the database URL,
a config or recipe that is a device or a pipe."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import pytest

GOOD_STATUS = {
    "station": "line1",
    "plugin": "industrial",
    "recipe": "steel",
    "pid": 1,
    "state": "stopped",
    "started_at": time.time() - 50,
    "updated_at": time.time() - 10,
    "images_total": 1,
    "verdicts": {"PASS": 1},
    "last_verdicts": [{"at": time.time() - 12, "source": "a.png", "verdict": "PASS"}],
    "last_errors": [],
}


def main_exit(monkeypatch, capsys, *args):
    """Run ``inspect ARGS`` through the real entry point: (exit code, stdout, stderr)."""
    from inspect_core import cli as cli_mod

    monkeypatch.setattr(sys, "argv", ["inspect", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        cli_mod.main()
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def _one_line_error(err: str, *says: str) -> None:
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and all(s in err for s in says), err


@pytest.mark.parametrize(
    "content, says",
    [
        (b"\xff\xfe\x00garbage", "not JSON"),
        (json.dumps(GOOD_STATUS).encode()[:100], "not JSON"),
        (b"[1, 2, 3]", "a JSON list, not an object"),
        (None, "it is a directory"),
    ],
    ids=["garbage", "truncated", "list", "directory"],
)
def test_a_damaged_status_file_is_one_line_saying_what_to_do(
    tmp_path, monkeypatch, capsys, content, says
):
    target = tmp_path / "status.json"
    if content is None:
        target.mkdir()
    else:
        target.write_bytes(content)
    code, _, err = main_exit(monkeypatch, capsys, "station", "status", "--state-dir", tmp_path)
    assert code == 2
    _one_line_error(err, says, "status.json", "Remove it")


def test_a_status_with_values_of_the_wrong_kind_shows_what_it_can(tmp_path, monkeypatch, capsys):
    bad = {**GOOD_STATUS, "started_at": None, "images_per_min": "x", "pid": 0}
    bad |= {"updated_at": 1e308, "last_verdicts": [{"at": "soon", "verdict": 5}]}
    (tmp_path / "status.json").write_text(json.dumps(bad))
    code, out, err = main_exit(monkeypatch, capsys, "station", "status", "--state-dir", tmp_path)
    assert code == 1 and not err  # not running (pid 0 is no process)
    assert "station   line1" in out and "verdicts  PASS 1" in out
    assert "last verdicts and errors: cannot be shown" in out
    bad |= {"last_verdicts": [], "started_at": -1e308, "updated_at": "x", "pid": 2**80}
    (tmp_path / "status.json").write_text(json.dumps(bad))
    code, out, err = main_exit(monkeypatch, capsys, "station", "status", "--state-dir", tmp_path)
    assert code == 1 and not err and "rate " in out


def _records_db(url: str) -> None:
    """An empty records database at ``url`` (a report refuses to create one)."""
    from inspect_db.engine import make_engine
    from inspect_db.migrate import ensure_schema

    engine = make_engine(url)
    ensure_schema(engine)
    engine.dispose()


def test_bytes_that_are_not_utf8_in_arguments_are_one_line_errors(tmp_path, monkeypatch, capsys):
    pytest.importorskip("inspect_db")
    db = f"sqlite:///{tmp_path / 'ok.db'}"
    _records_db(db)
    latin1 = os.fsdecode(b"sqlite:///" + os.fsencode(tmp_path) + b"/bad\xff.db")
    code, _, err = main_exit(monkeypatch, capsys, "report", "--db", latin1)
    assert code == 2
    _one_line_error(err, "not UTF-8", "\\xff", "--db or INSPECT_DATABASE_URL")
    monkeypatch.setenv("INSPECT_DATABASE_URL", latin1)
    code, _, err = main_exit(monkeypatch, capsys, "report")
    assert code == 2
    _one_line_error(err, "not UTF-8")
    monkeypatch.delenv("INSPECT_DATABASE_URL")
    code, _, err = main_exit(monkeypatch, capsys, "report", "--db", db, "--station", "x\udcff")
    assert code == 2
    _one_line_error(err, "'x\\xff' holds bytes that are not UTF-8")


def test_a_watch_folder_whose_name_is_not_utf8_is_watched(tmp_path, monkeypatch, capsys):
    inbox = tmp_path / os.fsdecode(b"Pr\xfcf")
    inbox.mkdir()
    code, _, err = main_exit(
        monkeypatch, capsys, "station", "run", "--plugin", "industrial", "--recipe", "steel",
        "--watch", inbox, "--db", f"sqlite:///{tmp_path / 'r.db'}", "--until-empty",
    )  # fmt: skip
    assert code == 0 and "not found" not in err


def _inspect(*args, cwd) -> subprocess.CompletedProcess:
    """``inspect ARGS`` in a process of at most 2 GB that must end within 60 s (a config
    that is a device or a pipe used to be read until memory ran out, or forever)."""

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    exe = [sys.executable, "-c", "from inspect_core.cli import main; main()"]
    return subprocess.run(
        [*exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60, preexec_fn=limit
    )


def test_configs_and_recipes_that_are_devices_or_pipes_are_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "fifo.toml")
    for config, says in (("/dev/zero", "character device"), ("fifo.toml", "FIFO")):
        r = _inspect("station", "check", config, cwd=tmp_path)
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "inbox").mkdir()
    for recipe, says in (("/dev/zero", "character device"), ("fifo.toml", "FIFO")):
        (tmp_path / "station.toml").write_text(
            f'[station]\nname = "s"\nplugin = "industrial"\nrecipe_file = "{recipe}"\n'
            '[source]\ntype = "folder"\npath = "inbox"\n[database]\nenabled = false\n'
        )
        r = _inspect("station", "check", "station.toml", cwd=tmp_path)
        assert r.returncode == 2 and "station.recipe_file" in r.stderr and says in r.stderr
