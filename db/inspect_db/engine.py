"""Database URLs and engines: SQLite (WAL, busy timeout) by default, PostgreSQL via psycopg 3.

The URL comes from ``--db``, else ``INSPECT_DATABASE_URL``, else ``sqlite:///inspect.db`` in
the working directory. ``postgresql://`` and ``postgres://`` URLs are routed to psycopg 3.

``make_engine(url, existing=True)`` is how every command that uses an existing database opens
it (all but ``inspect db upgrade`` and the writers' first use: a station, ``review user add``,
``model add``): a SQLite file that is not there is :class:`DatabaseMissing`, naming the file and
how to create one, and nothing is created; a PostgreSQL server is asked once, so that a refused
connection or a database that does not exist is one line before the command starts its work.
A URL that cannot be used as written is :class:`BadDatabaseURL`, showing the right form.

SQLite connections run with ``journal_mode=WAL``, ``synchronous=NORMAL``, a 30 s busy timeout
and foreign keys on. The driver's own transaction handling is switched off and SQLAlchemy emits
``BEGIN`` itself, so that a write transaction can start with ``BEGIN IMMEDIATE`` (pass the
execution option ``inspect_write=True``): several writer processes then queue on the write lock
instead of failing with "database is locked" when a read snapshot cannot be upgraded.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from inspect_db.errors import (
    BadDatabaseURL,
    DatabaseMissing,
    DatabaseUnavailable,
    DatabaseUnreadable,
    RecordsError,
)

ENV_URL = "INSPECT_DATABASE_URL"
DEFAULT_URL = "sqlite:///inspect.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26  # sqlite3 error codes of a damaged / foreign file
PG_CONNECT_TIMEOUT_S = 5
WRITE = {"inspect_write": True}  # execution options of a write transaction
DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")  # what inspect can open
FORMS = (
    "sqlite:///path/to/file.db (three slashes, relative to this folder; four for an absolute "
    "path: sqlite:////srv/line1.db) or postgresql+psycopg://user@host:5432/dbname"
)


def resolve_url(url: str | None = None) -> str:
    """The URL to use: ``url``, else ``$INSPECT_DATABASE_URL``, else the default SQLite file."""
    return url or os.environ.get(ENV_URL) or DEFAULT_URL


def parse_url(url: str | None = None) -> URL:
    """Parse and normalise a database URL (PostgreSQL goes through psycopg 3);
    :class:`BadDatabaseURL` for one that cannot be used as written."""
    raw = resolve_url(url)
    _check_utf8(raw)
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw[len("postgres://") :]
    try:
        u = make_url(raw)
    except (ArgumentError, ValueError) as e:
        raise _bad_url(raw, _parse_problem(raw, e)) from None
    if u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() not in ("sqlite", "postgresql"):
        raise _bad_url(raw, f"scheme {u.drivername!r}: only SQLite and PostgreSQL are supported")
    if u.drivername not in DRIVERS:
        raise _bad_url(raw, f"driver {u.drivername!r}: inspect uses sqlite and psycopg 3")
    if u.get_backend_name() == "sqlite" and (u.host or u.port or u.username):
        path = "/".join(p for p in (u.host, u.database) if p)
        raise _bad_url(
            raw,
            f"two slashes make {u.host!r} a host name, and a SQLite URL has none (the file "
            f"{path} is sqlite:///{path})",
        )
    return u


def _parse_problem(raw: str, e: Exception) -> str:
    """What is wrong with a URL that does not parse, and what was meant where it shows."""
    if "://" not in raw and not re.match(r"^[A-Za-z][\w+.-]*:/", raw):  # a file name alone
        return (
            f"cannot be parsed: a file name alone is not a URL (the file {raw} is sqlite:///{raw})"
        )
    if isinstance(e, ValueError):
        return "cannot be parsed: the port is not a number"
    return "cannot be parsed"


def _bad_url(raw: str, problem: str) -> BadDatabaseURL:
    """One line: the URL (without its password), what is wrong, and the right forms."""
    shown = re.sub(r"(://[^/:@]*):[^@/]*@", r"\1:***@", raw)
    return BadDatabaseURL(
        f"database URL {shown!r} (from --db or {ENV_URL}): {problem}; give {FORMS}"
    )


def _check_utf8(raw: str) -> None:
    """A URL with bytes that are not UTF-8 (typed on a Latin-1 terminal, a file name from a
    Windows share) cannot be used: say so, naming the first such byte but not the URL (it may
    hold a password)."""
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError as e:
        c = raw[e.start]
        try:
            shown = "\\x" + c.encode("utf-8", "surrogateescape").hex()
        except UnicodeEncodeError:
            shown = f"U+{ord(c):04X}"
        raise RecordsError(
            f"the database URL (from --db or {ENV_URL}) holds bytes that are not UTF-8 "
            f"({shown} at character {e.start + 1}); SQLite and PostgreSQL take UTF-8 names: "
            "rename the database file or its folder, or give the URL in UTF-8"
        ) from None


def safe_url(url: str | URL) -> str:
    """The URL without its password, for messages."""
    u = url if isinstance(url, URL) else make_url(url)
    return u.render_as_string(hide_password=True)


def json_dumps(value: object) -> str:
    """How JSON columns are written: anything not JSON-native (paths, numpy scalars) as text."""
    return json.dumps(value, default=_jsonable, separators=(",", ":"))


def _jsonable(value: object) -> object:
    tolist = getattr(value, "tolist", None)
    if callable(tolist):  # numpy arrays and scalars
        return tolist()
    return str(value)


def make_engine(
    url: str | None = None, *, pool_size: int = 5, echo: bool = False, existing: bool = False
) -> Engine:
    """A configured engine for ``url`` (see the module docstring). Does not connect yet,
    unless ``existing`` (a command that must not create the database): then a SQLite file that
    is not there is :class:`DatabaseMissing` (nothing created), and a PostgreSQL server is
    asked once (:func:`connect`'s one-line errors)."""
    u = parse_url(url)
    if existing:
        _require_file(u)
    if u.get_backend_name() == "sqlite":
        return _sqlite_engine(u, echo)
    try:
        engine = sa.create_engine(
            u,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            echo=echo,
            json_serializer=json_dumps,
            connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S, "application_name": "inspect"},
        )
    except (NoSuchModuleError, ImportError) as e:
        raise RecordsError(
            f"PostgreSQL needs psycopg 3: pip install 'inspect-db[postgres]' ({e})"
        ) from e
    except ArgumentError as e:
        raise _bad_url(safe_url(u), f"cannot be used ({e})") from None
    if existing:
        try:
            with connect(engine):
                pass
        except BaseException:
            engine.dispose()
            raise
    return engine


def sqlite_file(url: str | URL | None) -> Path | None:
    """The file a SQLite URL names (None for PostgreSQL, memory and ``file:`` URIs)."""
    u = url if isinstance(url, URL) else parse_url(url)
    db = u.database or ""
    if u.get_backend_name() != "sqlite" or db in ("", ":memory:") or db.startswith("file:"):
        return None
    return Path(db)


def _require_file(u: URL) -> None:
    """DatabaseMissing when the SQLite file ``u`` names is not there (or is a folder)."""
    path = sqlite_file(u)
    if path is None or path.is_file():
        return
    full = Path(os.path.abspath(path))
    if path.is_dir():
        raise DatabaseMissing(
            f"SQLite database {full} is a folder, not a database file: check --db (or "
            f"{ENV_URL}); give the file in it, sqlite:///{path}/NAME.db"
        )
    what = f"SQLite database {full} does not exist: check --db (or {ENV_URL}){_close(full)}"
    if str(path)[:1] == "~":
        what += "; ~ is not expanded in a URL: write the full path"
    raise DatabaseMissing(
        f"{what}{'' if what.endswith('?') else '.'} This command uses an existing database and "
        f"created nothing; to create one, run `inspect db upgrade --db {safe_url(u)}` or start "
        "a station with it"
    )


def _close(path: Path, most: int = 2000) -> str:
    """``; did you mean NAME?`` for a file beside ``path`` with a close name ("" for none)."""
    try:
        with os.scandir(path.parent) as it:
            names = [e.name for _, e in zip(range(most), it, strict=False) if e.is_file()]
    except OSError:
        return ""
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.75)
    return f"; did you mean {close[0]}?" if close else ""


def _sqlite_engine(u: URL, echo: bool) -> Engine:
    db = u.database or ""
    memory = db in ("", ":memory:") or db.startswith("file::memory:")
    kwargs: dict[str, Any] = {"echo": echo, "json_serializer": json_dumps}
    if memory:
        kwargs["poolclass"] = sa.pool.StaticPool
    if not memory and not Path(db).parent.exists():
        raise DatabaseUnavailable(
            f"SQLite database {db}: folder {Path(db).parent} does not exist; create it or "
            f"give another file with --db sqlite:///PATH or {ENV_URL}"
        )
    kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    engine = sa.create_engine(u, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(
        dbapi_conn: sqlite3.Connection, _record: object
    ) -> None:  # pragma: no cover - exercised via engine
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see do_begin)
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # FULL: a commit is on disk when it returns. A station deletes its journal row (with
        # fsync) as soon as the record is written; under NORMAL a power cut could roll the WAL
        # commit back and the record would be in neither place
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("inspect_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def require_existing(engine: Engine) -> None:
    """For a command that only reads: :class:`DatabaseMissing` when a SQLite URL names a file
    that does not exist (connecting would create an empty database and report nothing). New
    code passes ``existing=True`` to :func:`make_engine` instead."""
    _require_file(engine.url)


def is_unavailable(e: BaseException) -> bool:
    """Whether a database exception means "cannot reach / cannot lock the database"."""
    if isinstance(e, DBAPIError) and e.connection_invalidated:
        return True
    if isinstance(e, OperationalError):  # SQLite also reports schema problems this way
        text = str(getattr(e, "orig", e)).lower()
        return not any(
            s in text for s in ("no such table", "no such column", "syntax error", "has no column")
        )
    return isinstance(e, (sa.exc.InterfaceError, sa.exc.TimeoutError))


def unavailable(engine: Engine | URL | str, e: BaseException) -> DatabaseUnavailable:
    """A :class:`DatabaseUnavailable` that names the database and what to check."""
    url = engine.url if isinstance(engine, Engine) else engine
    orig = getattr(e, "orig", None) or e
    reason = " ".join(str(orig).split())[:300]
    u = url if isinstance(url, URL) else make_url(url)
    missing = re.search(r'database "([^"]+)" does not exist', reason)
    if u.get_backend_name() == "sqlite":
        hint = "check that the file's folder is writable and no other program holds a lock"
    elif missing:
        hint = (
            f"check --db; to create it run `createdb {missing.group(1)}` on the server, then "
            f"`inspect db upgrade --db {safe_url(u)}` or start a station with it"
        )
    else:
        hint = "check that the server runs and accepts connections, and the user/database exist"
    return DatabaseUnavailable(
        f"cannot use database {safe_url(u)}: {reason}; {hint} (URL from --db or {ENV_URL})"
    )


def unreadable(url: URL, e: BaseException) -> DatabaseUnreadable | None:
    """A :class:`DatabaseUnreadable` when ``e`` says the SQLite file is not a database or is
    damaged (None for any other error)."""
    code = getattr(getattr(e, "orig", None), "sqlite_errorcode", None)
    if code not in (SQLITE_NOTADB, SQLITE_CORRUPT):
        return None
    path = url.database
    if code == SQLITE_NOTADB:
        return DatabaseUnreadable(
            f"{path}: not an SQLite database (a text file, another format or an encrypted "
            f"database); check that --db or {ENV_URL} names the records database, or move "
            "this file aside and the next command creates a new one there"
        )
    return DatabaseUnreadable(
        f"{path}: the SQLite database is damaged (database disk image is malformed); restore "
        f"it from a backup, or recover what is left with `sqlite3 {path} .recover | sqlite3 "
        "recovered.db` and use that file"
    )


@contextmanager
def connect(engine: Engine, *, write: bool = False, snapshot: bool = False) -> Iterator[Connection]:
    """A connection inside one transaction (``BEGIN IMMEDIATE`` on SQLite when ``write``),
    committed at the end; connection problems become :class:`DatabaseUnavailable`.
    ``snapshot``: every query sees the same moment (a report's sections agree while stations
    write): PostgreSQL's REPEATABLE READ READ ONLY; SQLite's one read transaction does it."""
    try:
        with engine.connect() as conn:
            if write:
                conn.execution_options(**WRITE)
            elif snapshot and engine.dialect.name == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                yield conn
    except DBAPIError as e:
        if is_unavailable(e):
            raise unavailable(engine, e) from e
        bad = unreadable(engine.url, e)
        if bad is not None:
            raise bad from e
        raise


def will_create(url: str | None) -> Path | None:
    """The SQLite file that opening ``url`` would create (None when it is there, or for
    PostgreSQL): a writer's first use says so (:func:`created_note`), since a mistyped --db
    would otherwise start a second, empty database unnoticed."""
    path = sqlite_file(url)
    return None if path is None or path.exists() else Path(os.path.abspath(path))


def created_note(path: Path) -> str:
    """The one line a command that created a new SQLite database prints (on stderr)."""
    return (
        f"note: created a new records database {path} (there was no file; if you meant an "
        f"existing one, check --db or {ENV_URL})"
    )
