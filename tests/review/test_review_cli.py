"""``inspect review user ...`` and ``inspect review serve``: users with hashed passwords, clear
errors (exit 2) that change nothing, a server bound to 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from review_kit import main_exit

from inspect_core.errors import InspectError
from inspect_db.engine import make_engine
from inspect_db.migrate import upgrade
from inspect_review.commands import review_group
from inspect_review.extra import require

pytest.importorskip("argon2")


def users(url: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as c:
        rows = c.execute(sa.text("SELECT name, role, password_hash, disabled_at FROM review_user"))
        out = [tuple(r) for r in rows]
    engine.dispose()
    return out


def test_users_are_added_with_hashed_passwords(sqlite_url, monkeypatch, capsys):
    run = CliRunner().invoke
    r = run(
        review_group,
        ["user", "add", "olga", "--role", "operator", "--db", sqlite_url],
        input="s3cret-enough\ns3cret-enough\n",
    )
    assert r.exit_code == 0 and "added operator olga" in r.output, r.output
    ((name, role, stored, disabled),) = users(sqlite_url)
    assert (name, role, disabled) == ("olga", "operator", None)
    assert stored.startswith("$argon2id$") and "s3cret" not in stored
    from inspect_review.auth import verify_password

    assert verify_password(stored, "s3cret-enough") and not verify_password(stored, "s3cret")
    r = run(
        review_group,
        ["user", "add", "erik", "--role", "engineer", "--db", sqlite_url, "--password-stdin"],
        input="another-password\n",
    )
    assert r.exit_code == 0
    r = run(review_group, ["user", "list", "--db", sqlite_url, "--json"])
    assert [(u["name"], u["role"], u["active"]) for u in json.loads(r.output)] == [
        ("erik", "engineer", True),
        ("olga", "operator", True),
    ]
    r = run(review_group, ["user", "disable", "olga", "--db", sqlite_url])
    assert (
        r.exit_code == 0
        and "(disabled)" in run(review_group, ["user", "list", "--db", sqlite_url]).output
    )
    r = run(
        review_group,
        ["user", "passwd", "erik", "--db", sqlite_url, "--password-stdin"],
        input="a-new-password\n",
    )
    assert r.exit_code == 0
    before = users(sqlite_url)
    for args, stdin, words in (
        (
            ["user", "add", "olga", "--role", "engineer", "--password-stdin"],
            "password-1\n",
            "exists already",
        ),
        (
            ["user", "add", "x y", "--role", "operator", "--password-stdin"],
            "password-1\n",
            "user name",
        ),
        (["user", "add", "kim", "--role", "operator", "--password-stdin"], "short\n", "at least 8"),
        (["user", "passwd", "nobody", "--password-stdin"], "password-1\n", "no review user"),
    ):
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code, _, err = main_exit(monkeypatch, capsys, "review", *args, "--db", sqlite_url)
        assert code == 2 and words in err, (args, err)
    code, _, err = main_exit(monkeypatch, capsys, "review", "user", "add", "kim", "--role", "admin")
    assert code == 2 and "'admin' is not one of" in err
    assert users(sqlite_url) == before  # nothing changed


def test_a_missing_extra_says_how_to_install_it(monkeypatch, capsys, sqlite_url):
    with pytest.raises(InspectError, match=r"pip install -e '\.\[review\]'"):
        require("no_such_module_for_review")
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if it were not installed
    code, _, err = main_exit(monkeypatch, capsys, "review", "serve", "--db", sqlite_url)
    assert code == 2 and "uvicorn" in err and "pip install -e '.[review]'" in err


def test_serve_refuses_a_port_in_use(monkeypatch, capsys, sqlite_url):
    upgrade(make_engine(sqlite_url))  # serve opens an existing database, never makes one
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = main_exit(
            monkeypatch, capsys, "review", "serve", "--db", sqlite_url, "--port", port
        )
    assert code == 2 and f"cannot serve on 127.0.0.1:{port}" in err and "--port" in err


def test_serve_listens_on_127_0_0_1(sqlite_url, tmp_path):
    upgrade(make_engine(sqlite_url))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-c",
        "from inspect_core.cli import main; main()",
        "review",
        "serve",
        "--db",
        sqlite_url,
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        end, status = time.monotonic() + 60, None
        while status is None and time.monotonic() < end and proc.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5)
                status = 200
            except urllib.error.URLError:
                time.sleep(0.2)
        assert status == 200, proc.stderr.read() if proc.poll() is not None else "no answer"
        listening = [
            line
            for line in open("/proc/net/tcp").read().splitlines()[1:]
            if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"
        ]
        assert listening and all(line.split()[1].startswith("0100007F:") for line in listening)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert f"review page: http://127.0.0.1:{port}/" in out
    assert "no review user yet" in err
