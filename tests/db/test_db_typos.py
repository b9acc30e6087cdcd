"""A mistyped ``--db`` never creates a database (issue 27, item 4).

Only ``inspect db upgrade`` and the tools that write on first use (a station, ``review user
add``, ``model add``) may create one; every other command that names a SQLite file that is not
there says so in one line (which file, how to create one) with exit code 2 and creates
nothing. A malformed URL is one line that shows the right form; a PostgreSQL server that
refuses, or a database that does not exist on it, is one line too.
"""

from __future__ import annotations

import io
import sqlite3
import sys
from pathlib import Path

import pytest

from inspect_db.engine import make_engine
from inspect_db.errors import BadDatabaseURL, DatabaseMissing
from inspect_db.migrate import upgrade

ROOT = Path(__file__).resolve().parents[2]
STEEL = ROOT / "plugins" / "inspect_plugins" / "industrial" / "models" / "steel.onnx"
RECIPE = ["--plugin", "industrial", "--recipe", "steel"]

# every command that uses an existing database and must never create one
READERS = {
    "report": ["report"],
    "db current": ["db", "current"],
    "model list": ["model", "list", *RECIPE],
    "model promote": ["model", "promote", "v1", *RECIPE],
    "model rollback": ["model", "rollback", *RECIPE],
    "review serve": ["review", "serve", "--port", "8699"],
    "review export": ["review", "export", "--out", "{tmp}/dataset"],
    "review user list": ["review", "user", "list"],
    "review user passwd": ["review", "user", "passwd", "olga", "--password-stdin"],
    "review user disable": ["review", "user", "disable", "olga"],
    "backtest": ["backtest", *RECIPE, "--candidate", str(STEEL)],
}


def main_exit(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``inspect ARGS`` through the real entry point: (exit code, stdout, stderr). A review
    page that would start serving exits 99 instead (the test must not hang on it)."""
    import uvicorn

    from inspect_core import cli as cli_mod

    def serving(*_a: object, **_k: object) -> None:
        raise SystemExit(99)

    monkeypatch.setattr(uvicorn, "run", serving)
    monkeypatch.setattr(sys, "stdin", io.StringIO("a-password-1\n"))
    monkeypatch.setattr(sys, "argv", ["inspect", *map(str, args)])
    try:
        cli_mod.main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as c:
        return [r[0] for r in c.execute("SELECT name FROM sqlite_master")]


def _args(name: str, tmp: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)) for a in READERS[name]]


@pytest.fixture
def line1(tmp_path) -> Path:
    """The line's real records database, line1.db (migrated), in tmp_path."""
    path = tmp_path / "line1.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.mark.parametrize("name", list(READERS))
def test_a_mistyped_sqlite_file_is_one_line_and_nothing_is_created(
    monkeypatch, capsys, tmp_path, line1, name
):
    typo = tmp_path / "lin1.db"
    code, out, err = main_exit(
        monkeypatch, capsys, *_args(name, tmp_path), "--db", f"sqlite:///{typo}"
    )
    assert code == 2, (code, out, err)
    line = one_line(err)
    assert f"{typo} does not exist" in line  # which file
    assert f"inspect db upgrade --db sqlite:///{typo}" in line and "station" in line  # how
    assert "did you mean line1.db?" in line  # the file beside it with a close name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["line1.db"]  # nothing created


@pytest.mark.parametrize("name", ["model list", "review serve", "review user list", "db current"])
def test_a_relative_typo_names_the_full_path(monkeypatch, capsys, tmp_path, line1, name):
    monkeypatch.chdir(tmp_path)
    code, _, err = main_exit(
        monkeypatch, capsys, *_args(name, tmp_path), "--db", "sqlite:///lin1.db"
    )
    assert code == 2 and f"{tmp_path / 'lin1.db'} does not exist" in one_line(err)
    assert not (tmp_path / "lin1.db").exists()


@pytest.mark.parametrize("name", ["model list", "review serve", "review user list", "backtest"])
def test_an_empty_file_left_by_a_typo_is_not_migrated(monkeypatch, capsys, tmp_path, name):
    """A zero-byte lin1.db (what the typo used to leave) is refused, and no table is made in
    it (SQLite may write its header on connecting)."""
    typo = tmp_path / "lin1.db"
    typo.touch()
    code, _, err = main_exit(
        monkeypatch, capsys, *_args(name, tmp_path), "--db", f"sqlite:///{typo}"
    )
    assert code == 2 and "holds no inspect records" in one_line(err), err
    assert tables(typo) == []


def test_the_environment_url_is_checked_too(monkeypatch, capsys, tmp_path, line1):
    monkeypatch.setenv("INSPECT_DATABASE_URL", f"sqlite:///{tmp_path / 'lin1.db'}")
    code, _, err = main_exit(monkeypatch, capsys, "model", "list", *RECIPE)
    assert code == 2 and "lin1.db does not exist" in one_line(err)
    assert not (tmp_path / "lin1.db").exists()


def test_a_folder_is_not_a_database_file(monkeypatch, capsys, tmp_path):
    code, _, err = main_exit(monkeypatch, capsys, "report", "--db", f"sqlite:///{tmp_path}")
    assert code == 2 and "is a folder, not a database file" in one_line(err)


def test_the_commands_that_create_a_database_still_do(monkeypatch, capsys, tmp_path):
    new = tmp_path / "new.db"
    code, out, err = main_exit(monkeypatch, capsys, "db", "upgrade", "--db", f"sqlite:///{new}")
    assert code == 0 and new.is_file() and "schema upgraded" in out, err
    pytest.importorskip("argon2")
    users = tmp_path / "users.db"
    code, out, err = main_exit(
        monkeypatch,
        capsys,
        *["review", "user", "add", "olga", "--role", "operator", "--password-stdin"],
        *["--db", f"sqlite:///{users}"],
    )
    assert code == 0 and users.is_file() and "added operator olga" in out, err
    assert f"created a new records database {users}" in one_line(err)  # a typo shows here
    code, out, err = main_exit(
        monkeypatch, capsys, "review", "user", "list", "--db", f"sqlite:///{users}"
    )
    assert code == 0 and "olga" in out and err == ""  # the second time, nothing to say


def test_the_python_api_refuses_and_creates_nothing(tmp_path):
    missing = tmp_path / "nope.db"
    with pytest.raises(DatabaseMissing, match="nope.db does not exist"):
        make_engine(f"sqlite:///{missing}", existing=True)
    assert not missing.exists()
    engine = make_engine(f"sqlite:///{missing}")  # the default: a writer's first use
    engine.dispose()


MALFORMED = {
    "sqlite://line1.db": "sqlite:///line1.db",  # two slashes: line1.db read as a host
    "sqlite://data/line1.db": "sqlite:///data/line1.db",
    "line1.db": "sqlite:///line1.db",  # a file name alone
    "/srv/line1.db": "sqlite:////srv/line1.db",
    "foo://x/y": "only SQLite and PostgreSQL",
    "mysql://u@h/db": "only SQLite and PostgreSQL",
    "Sqlite:///line1.db": "only SQLite and PostgreSQL",
    "postgresql+psycopg2://u@127.0.0.1/db": "postgresql+psycopg://",
    "sqlite+aiosqlite:///line1.db": "sqlite:///",
    "postgresql://u:s3cret@127.0.0.1:notaport/db": "port",
}


@pytest.mark.parametrize("command", [["report"], ["model", "list", *RECIPE], ["db", "upgrade"]])
@pytest.mark.parametrize("url", list(MALFORMED))
def test_a_malformed_url_is_one_line_with_the_right_form(
    monkeypatch, capsys, tmp_path, url, command
):
    monkeypatch.chdir(tmp_path)
    code, _, err = main_exit(monkeypatch, capsys, *command, "--db", url)
    assert code == 2, err
    line = one_line(err)
    assert MALFORMED[url] in line, line
    assert "sqlite:///path/to/file.db" in line and "postgresql+psycopg://" in line  # the forms
    assert "s3cret" not in line  # a password is never shown
    assert list(tmp_path.iterdir()) == []


def test_malformed_urls_raise_bad_database_url():
    for url in MALFORMED:
        with pytest.raises(BadDatabaseURL):
            make_engine(url)


PG_REFUSED = "postgresql://postgres@127.0.0.1:1/line1"  # nothing listens on port 1


@pytest.mark.parametrize("name", list(READERS))
def test_a_postgresql_server_that_refuses_is_one_line(monkeypatch, capsys, tmp_path, name):
    code, out, err = main_exit(monkeypatch, capsys, *_args(name, tmp_path), "--db", PG_REFUSED)
    assert code == 2, (code, out, err)
    line = one_line(err)
    assert "127.0.0.1:1/line1" in line and "server runs" in line


def test_a_postgresql_database_that_does_not_exist_is_one_line(monkeypatch, capsys, tmp_path):
    from db_support import _pg_admin

    admin, why = _pg_admin()
    if admin is None:
        pytest.skip(why)
    url = admin.rpartition("/")[0] + "/inspect_no_such_database"
    for name in ("model list", "review serve", "report"):
        code, _, err = main_exit(monkeypatch, capsys, *_args(name, tmp_path), "--db", url)
        line = one_line(err)
        assert code == 2 and '"inspect_no_such_database" does not exist' in line, line
        assert "createdb inspect_no_such_database" in line and "inspect db upgrade" in line


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("model list", 0),
        ("review user list", 0),
        ("db current", 0),
        ("report", 0),
        ("review serve", 99),  # reached the server (stopped there by main_exit)
    ],
)
def test_the_right_file_still_works(monkeypatch, capsys, tmp_path, line1, name, want):
    args = _args(name, tmp_path)
    code, out, err = main_exit(monkeypatch, capsys, *args, "--db", f"sqlite:///{line1}")
    assert code == want, (out, err)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db") == ["line1.db"]
